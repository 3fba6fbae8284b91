"""edgeclass bench: every available precision side by side, the CPU's capabilities, JSON."""

from __future__ import annotations

import json

import openvino as ov

from conftest import run_cli


def test_bench_json(trained_model_dir, image_sets):
    r = run_cli("bench", str(image_sets["run"]), "--model", str(trained_model_dir), "--seconds", "0.5", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    precisions = [x["precision"] for x in report["results"]]
    has_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert precisions == ["fp32"] + (["bf16"] if has_bf16 else []) + ["int8"]
    fp32 = report["results"][0]
    assert fp32["inference_precision"] == "f32"  # fp32 really is f32
    for x in report["results"]:
        assert x["throughput"] > 0 and x["latency_ms"]["p50"] <= x["latency_ms"]["p90"] <= x["latency_ms"]["p99"]
        assert x["streams"] >= 1 and x["requests"] >= 1 and x["threads"] >= 1
    assert set(report["cpu"]) >= {"vnni", "bf16", "amx", "openvino_capabilities", "cores"}
    assert report["end_to_end"]["images"] == 12 and report["end_to_end"]["ok"] == 12
    from edgeclass.media import resample_native

    # the CLI's process finds the same build as this one (pip install built it where cc exists)
    assert report["end_to_end"]["resampler"] == ("compiled" if resample_native.available() else "numpy")


def test_bench_table_and_unavailable_precision(trained_model_dir, tmp_path):
    r = run_cli("bench", "--model", str(trained_model_dir), "--seconds", "0.5", "--precision", "fp32")
    assert r.returncode == 0, r.stderr
    assert "img/s" in r.stdout and "p99 ms" in r.stdout
    fp32_only = tmp_path / "m"
    fp32_only.mkdir()
    for f in ("model_fp32.xml", "model_fp32.bin"):
        (fp32_only / f).write_bytes((trained_model_dir / f).read_bytes())
    r = run_cli("bench", "--model", str(fp32_only), "--precision", "int8", "--seconds", "0.5")
    assert r.returncode == 2 and "not available" in r.stderr
    r = run_cli("bench", str(tmp_path / "no-such-folder"), "--model", str(trained_model_dir), "--seconds", "0.5")
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr  # before any measuring
