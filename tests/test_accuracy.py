"""INT8 users can trust: FP32 IR vs PyTorch accuracy, INT8 vs FP32 with default settings,
the accuracy gate, and `edgeclass info` showing the record. Uses the trained test model."""

from __future__ import annotations

import shutil

import numpy as np
import openvino as ov
import pytest
import torch
from PIL import Image

from conftest import fp32_only_copy, run_cli
from edgeclass.cpuclass import detect
from edgeclass.model.calibration import list_images, load_set
from edgeclass.model.evaluate import predict_all, top1_accuracy
from edgeclass.modelfiles.metadata import read_metadata


def test_fp32_ir_accuracy_equals_pytorch(trained_model_dir, trained_dir, image_sets):
    import timm
    import timm.data
    from safetensors.torch import load_file

    model = timm.create_model("mobilevitv2_050", num_classes=4)
    model.load_state_dict(load_file(str(trained_dir / "checkpoint.safetensors")))
    model.eval()
    core = ov.Core()
    meta = read_metadata(core.read_model(trained_model_dir / "model_fp32.xml"))
    val = image_sets["validation"]
    images = load_set(list_images(val), meta.preprocess, val, meta.labels)
    assert len(images) == 200 and images.labelled
    pp = meta.preprocess
    tf = timm.data.create_transform(input_size=(3, *pp.input_size), crop_pct=pp.crop_pct,
                                    interpolation=pp.interpolation, mean=pp.mean, std=pp.std)
    with torch.no_grad():
        ref = np.concatenate([
            model(torch.stack([tf(Image.open(p).convert("RGB")) for p in images.paths[i:i + 50]])).numpy()
            for i in range(0, len(images), 50)
        ])
    ir = predict_all(core.compile_model(trained_model_dir / "model_fp32.xml", "CPU",
                                        {"INFERENCE_PRECISION_HINT": "f32"}), images.tensors)
    acc_torch, acc_ir = top1_accuracy(ref, images.targets), top1_accuracy(ir, images.targets)
    print(f"top-1: PyTorch {acc_torch:.4f}, FP32 IR {acc_ir:.4f}")
    assert 0.5 < acc_ir < 0.99  # a real task: far above chance (0.25), not trivially solved
    assert abs(acc_ir - acc_torch) <= 0.005


def test_int8_within_one_point_of_fp32_with_defaults(trained_model_dir):
    meta = read_metadata(ov.Core().read_model(trained_model_dir / "model_int8.xml"))
    a = meta.accuracy
    print(a)
    assert a["images"] == 200 and a["criterion"] == "accuracy drop" and a["fp32_top1"] is not None
    assert a["fp32_top1"] - a["int8_top1"] == pytest.approx(a["drop"]["estimate"])
    assert a["drop"]["estimate"] <= 0.01 and a["drop"]["low"] <= a["drop"]["estimate"] <= a["drop"]["high"]
    assert a["passed"] is True and a["limit"] == 0.01
    assert meta.calibration["options"]["preset"] == "performance"
    assert meta.calibration["options"]["fast_bias_correction"] is False
    # the promise is the kept model's drop, whichever way it was made (plain INT8 on one CPU class
    # may need accuracy control on another)
    assert meta.calibration["method"] == "plain" or meta.calibration["method"].startswith(("accuracy control", "plain ("))
    # made for every x86 class by default, and the class the gate measured on is recorded
    assert meta.calibration["target_cpu"] == "any" and meta.calibration["overflow_fix"] == "enable"
    assert meta.calibration["measured_on"] == detect().as_record()


def test_info_shows_everything(trained_model_dir):
    r = run_cli("info", str(trained_model_dir))
    assert r.returncode == 0, r.stderr
    verdict = read_metadata(ov.Core().read_model(trained_model_dir / "model_int8.xml")).accuracy["verdict"]
    shown = {"passed": "gate PASSED", "inconclusive": "gate KEPT (inconclusive)"}[verdict]
    for text in ("mobilevitv2_050", "4 (circle", "64x64", "160 images used", "NNCF", "accuracy drop",
                 "top-1 agreement", shown, "INT8 method", "model_int8.bin", "INT8 made for", "any x86 CPU",
                 "gate measured on", detect().label):
        assert text in r.stdout, text


@pytest.mark.slow
def test_accuracy_control_never_ends_worse_than_plain(tmp_path, trained_model_dir, image_sets):
    """One calibration image gives poor INT8 ranges; with a labelled --validation and a tight
    --max-drop, plain INT8 misses the limit, NNCF's accuracy control reverts sensitive layers,
    and edgeclass keeps whichever of the two loses less."""
    md = fp32_only_copy(trained_model_dir, tmp_path / "m")
    calib = tmp_path / "one"
    calib.mkdir()
    shutil.copy(list_images(image_sets["calibration"])[0], calib / "only.png")
    val = tmp_path / "val"
    for p in list_images(image_sets["validation"])[::8]:  # 25 labelled images, ImageFolder layout
        dest = val / p.rsplit("/", 2)[-2]
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    r = run_cli("quantize", str(md), "--calibration", str(calib), "--validation", str(val), "--max-drop", "0.5")
    assert "Traceback" not in r.stderr
    meta_file = md / ("model_int8.xml" if r.returncode == 0 else "model_int8.rejected.xml")
    meta = read_metadata(ov.Core().read_model(meta_file))
    c, a = meta.calibration, meta.accuracy
    assert c["images_used"] == 1
    attempts = {t["method"]: t["drop"] for t in c["attempts"]}
    assert attempts["plain"] > 0.005  # plain missed the limit, so accuracy control ran
    assert "accuracy control" in attempts
    assert a["drop"]["estimate"] == pytest.approx(min(attempts.values()))  # never worse than plain
    assert f"INT8 method: {c['method']}" in r.stderr
    if c["method"].startswith("accuracy control"):
        assert c["reverted_to_float"] and "kept in float by accuracy control" in r.stderr
        assert attempts["accuracy control"] < attempts["plain"]
    else:
        assert c["method"] == "plain (accuracy control did not do better)" and not c["reverted_to_float"]

    # --no-accuracy-control: plain INT8 misses the limit again and is all there is, no reverts tried
    # (fast bias correction: 3x quicker, and one calibration image is what makes plain INT8 miss)
    md2 = fp32_only_copy(trained_model_dir, tmp_path / "m2")
    r2 = run_cli("quantize", str(md2), "--calibration", str(calib), "--validation", str(val), "--max-drop", "0.5",
                 "--no-accuracy-control", "--fast-bias-correction")
    assert "Traceback" not in r2.stderr and "INT8 method: plain" in r2.stderr.splitlines()
    assert r2.stdout == "" and "Statistics collection" in r2.stderr  # NNCF's bars: stderr, not stdout
    meta2 = read_metadata(ov.Core().read_model(md2 / ("model_int8.xml" if r2.returncode == 0 else "model_int8.rejected.xml")))
    c2 = meta2.calibration
    assert c2["options"]["accuracy_control"] is False and c2["method"] == "plain" and not c2["reverted_to_float"]
    assert [t["method"] for t in c2["attempts"]] == ["plain"]
    assert meta2.accuracy["drop"]["estimate"] == pytest.approx(c2["attempts"][0]["drop"])
    assert meta2.accuracy["drop"]["estimate"] > 0.005  # accuracy control would have run without the flag
    assert r2.returncode == (5 if meta2.accuracy["verdict"] == "refused" else 0)
