"""The INT8 promise on the x86 classes without VNNI, on any box: quantized and measured in
processes capped to AVX2 and to SSE4.1 (both OpenVINO variables: one alone is not honoured), and
`run`'s warning for a model whose accuracy was measured with VNNI."""

from __future__ import annotations

import shutil
from pathlib import Path

import openvino as ov
import pytest

from conftest import fp32_only_copy, read_csv, run_cli
from edgeclass.modelfiles.metadata import read_metadata
from test_int8_gate import _capped, check_default_int8, gate_images


@pytest.mark.slow
@pytest.mark.parametrize("isa", ["AVX2", "SSE41"])
def test_default_quantize_keeps_int8_within_the_limit_without_vnni(isa, trained_model_dir, tmp_path):
    """On the classes without VNNI (AVX2; SSE4.1 boxes without AVX), quantized and measured
    there: the same promise as the README's convert on this box's class. The class this box runs
    as anyway (an AVX2 box, or a run capped to AVX2) is test_int8_gate.py's own case: the same model,
    images and quantization, so it is not made a second time."""
    from edgeclass.cpuclass import detect

    if detect().name == isa:
        pytest.skip(f"this process runs as {detect().describe()}: test_int8_gate.py's shapes case is this case")
    md = fp32_only_copy(trained_model_dir, tmp_path / "m")
    calib, labelled = gate_images(tmp_path, "shapes")
    r = run_cli("quantize", str(md), "--calibration", str(calib), env=_capped(isa))
    assert r.returncode == 0, r.stderr
    check_default_int8(md, labelled, isa)


def _as_if_made_on_a_vnni_workstation(model_dir: Path) -> None:
    """Rewrite the INT8 IR's record as `quantize --target-cpu vnni` on a Zen 4 leaves it: 8-bit
    weights, the gate measured with VNNI (the model folder copied to this box afterwards)."""
    from edgeclass.modelfiles.ir import save_ir

    core = ov.Core()
    model = core.read_model(model_dir / "model_int8.xml")
    meta = read_metadata(model)
    calibration = {**meta.calibration, "target_cpu": "vnni", "overflow_fix": "first_layer_only",
                   "measured_on": {"class": "AVX512_CORE_BF16", "vnni": True, "bf16": True, "capped": None,
                                   "cpu": "AMD EPYC 9004 (Zen 4)"}}
    save_ir(model, meta.with_updates(calibration=calibration), model_dir / "model_int8.xml")


def test_run_warns_once_when_int8_accuracy_was_measured_with_vnni_and_this_cpu_has_none(
        tmp_path, trained_model_dir, image_sets):
    md = tmp_path / "m"
    shutil.copytree(trained_model_dir, md)
    _as_if_made_on_a_vnni_workstation(md)
    for extra in ((), ("-q",)):  # said even with -q: the rows' accuracy is unknown
        r = run_cli("run", str(image_sets["run"]), "--model", str(md), *extra, env=_capped("AVX2"))
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("accuracy was measured on AVX-512 + VNNI + BF16 (AMD EPYC 9004 (Zen 4))") == 1, r.stderr
        assert "--target-cpu any" in r.stderr and "Traceback" not in r.stderr
        assert len(read_csv(r.stdout)) == len(list(image_sets["run"].iterdir()))
    info = run_cli("info", str(md), env={"COLUMNS": "250"})
    assert "CPUs with VNNI or AMX" in info.stdout and "AMD EPYC 9004" in info.stdout
    # the model edgeclass makes by default (7-bit weights) runs everywhere without the warning
    plain = run_cli("run", str(image_sets["run"]), "--model", str(trained_model_dir), env=_capped("AVX2"))
    assert plain.returncode == 0 and "accuracy was measured" not in plain.stderr
    # on this box's own class: the warning only where there is no VNNI (read from the CPU's flags)
    from edgeclass.cpuclass import detect

    native = run_cli("run", str(image_sets["run"]), "--model", str(md))
    here = detect()
    assert ("accuracy was measured" in native.stderr) == (not here.vnni), f"{here.describe()}: {native.stderr}"
