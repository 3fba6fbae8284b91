"""The INT8 gate: sound statistics (unit tests on known numbers) and, on real trained models
with real NNCF, INT8 kept when it is good and refused when it is bad."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest

import train_test_model
from conftest import REPO, cached_once, read_csv, run_cli, synthetic_photo
from edgeclass.errors import EXIT_ACCURACY_GATE
from edgeclass.model.calibration import list_images
from edgeclass.modelfiles.metadata import read_metadata


# ----------------------------------------------------------------------------- statistics
def _probs(top: float, n: int, classes: int = 4, winner: int = 0) -> np.ndarray:
    p = np.full((n, classes), (1 - top) / (classes - 1), np.float32)
    p[:, winner] = top
    return p


# ----------------------------------------------------------------------------- real models
def _convert(trained: Path, calib: Path, out: Path, *extra: str, env: dict | None = None):
    return run_cli("convert", "--model", "mobilevitv2_050", "--weights", str(trained / "checkpoint.safetensors"),
                   "--labels", str(trained / "labels.txt"), "--input-size", str(train_test_model.TRAIN_SIZE),
                   "--crop-pct", "0.875", "--calibration", str(calib), "-o", str(out), *extra, env=env)


_LABELLED_DROP = """
import json, sys
from pathlib import Path
import openvino as ov
from edgeclass.model import gate
from edgeclass.model.calibration import list_images, load_set
from edgeclass.model.evaluate import predict_all
from edgeclass.modelfiles.metadata import read_metadata
md, labelled = Path(sys.argv[1]), Path(sys.argv[2])
core = ov.Core()
meta = read_metadata(core.read_model(md / "model_fp32.xml"))
images = load_set(list_images(labelled), meta.preprocess, labelled, meta.labels)
p = predict_all(core.compile_model(md / "model_fp32.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), images.tensors)
q = predict_all(core.compile_model(md / "model_int8.xml", "CPU"), images.tensors)
r = gate.check(p, q, "labelled", 0.01, 0.01, images.targets)
print(json.dumps({"drop": [r.drop.estimate, r.drop.low, r.drop.high], "fp32_top1": r.fp32_top1}))
"""


def _labelled_drop(model_dir: Path, labelled: Path, env: dict) -> dict:
    """INT8's accuracy drop on labelled images, measured in a process with ``env``'s CPU cap (OpenVINO
    reads the cap once, at start)."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _LABELLED_DROP, str(model_dir), str(labelled)], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def _capped(isa: str | None) -> dict:
    """The environment that makes OpenVINO run as CPU class ``isa`` (both variables: one alone is
    not honoured), or none (this box's own class)."""
    return {"OV_CPU_MAX_ISA": isa, "ONEDNN_MAX_CPU_ISA": isa} if isa else {}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["colours", "shapes"])
def test_default_convert_keeps_int8_and_its_estimate_matches_the_labelled_drop(variant, request, tmp_path):
    """The README's `convert --calibration DIR` on an unlabelled folder keeps INT8 on both
    trained models; every image calibrates; the gate's unlabelled interval agrees with the
    accuracy drop measured with labels on 400 images the model has never seen."""
    trained = request.getfixturevalue("accurate_dir" if variant == "colours" else "trained_dir")
    calib, labelled = gate_images(tmp_path, variant)
    r = _convert(trained, calib, tmp_path / "m")
    assert r.returncode == 0, r.stderr
    real = check_default_int8(tmp_path / "m", labelled, None)
    if variant == "colours":
        assert real["fp32_top1"] >= 0.95


def gate_images(tmp_path: Path, variant: str) -> tuple[Path, Path]:
    """240 unlabelled calibration images and 400 labelled unseen ones, made once for every test and
    worker (read only)."""
    def build(root: Path) -> None:
        train_test_model.write_images(root / "calib", 60, seed=111, imagefolder=False, variant=variant)
        train_test_model.write_images(root / "labelled", 100, seed=222, variant=variant)

    key = hashlib.sha256((REPO / "scripts" / "train_test_model.py").read_bytes()).hexdigest()[:12]
    root = cached_once(f"gate-images-{variant}", key, build)
    return root / "calib", root / "labelled"


def check_default_int8(md: Path, labelled: Path, isa: str | None) -> dict:
    """INT8 kept by default on the class ``isa`` (None: this box's), every image calibrating, and
    the gate's unlabelled interval agreeing with the labelled drop measured on that class."""
    assert (md / "model_int8.xml").exists() and not (md / "model_int8.rejected.xml").exists()
    meta = read_metadata(ov.Core().read_model(md / "model_int8.xml"))
    assert meta.calibration["images_used"] == 240 == meta.calibration["images_available"]  # none starved
    from edgeclass.cpuclass import detect

    measured_on = meta.calibration["measured_on"]
    if isa:
        assert measured_on["class"] == isa and measured_on["capped"] == isa
    else:  # the class this process runs as (this box's, or the cap the whole run was started under)
        assert measured_on["class"] == detect().name and measured_on["capped"] == detect().capped
    a = meta.accuracy
    assert a["criterion"] == "expected accuracy drop" and a["verdict"] != "refused" and a["images"] == 240
    assert a["views"] == 2 and a["limit"] == 0.01
    real = _labelled_drop(md, labelled, _capped(isa))
    estimate, low, high = real["drop"]
    print(f"{md} on {isa or 'this CPU'}: gate {a['drop']}, labelled {real}")
    # the intervals agree (within 0.5 pt: the expected drop is >= 0 by construction, while INT8
    # can be luckier than FP32 on a labelled sample)
    assert high + 0.005 >= a["drop"]["low"] and low <= a["drop"]["high"] + 0.005
    assert abs(estimate - a["drop"]["estimate"]) <= 0.015
    assert estimate <= 0.01  # the kept INT8 is within the limit on the class it runs on
    return real


@pytest.mark.slow
def test_sabotaged_int8_refused_last_good_kept_and_run_warns(tmp_path, trained_model_dir, image_sets):
    """INT8 calibrated on near-black frames and checked on real images is refused (exit 5), and
    the good INT8 already in the folder stays the default, byte for byte. In a folder whose only
    INT8 was refused, `run -q` says it runs FP32 (one quantization: the good INT8 is the shared
    test model's, and the refused-only folder is that folder without it)."""
    md = tmp_path / "m"
    shutil.copytree(trained_model_dir, md)
    good = hashlib.sha256((md / "model_int8.bin").read_bytes()).hexdigest()
    dark, flat = tmp_path / "dark", tmp_path / "flat"
    dark.mkdir()
    flat.mkdir()
    for p in list_images(image_sets["calibration"]):
        cv2.imwrite(str(dark / Path(p).name), (cv2.imread(p) * 0.04).astype(np.uint8))
    for p in list_images(image_sets["validation"])[::2]:
        shutil.copy(p, flat / Path(p).name)
    r = run_cli("quantize", str(md), "--calibration", str(dark), "--validation", str(flat))
    assert r.returncode == EXIT_ACCURACY_GATE, r.stderr
    assert "INT8 refused: expected accuracy drop" in r.stderr and "Traceback" not in r.stderr
    assert "calibration images are nearly flat" in r.stderr and "stays the default" in r.stderr
    assert hashlib.sha256((md / "model_int8.bin").read_bytes()).hexdigest() == good
    a = read_metadata(ov.Core().read_model(md / "model_int8.rejected.xml")).accuracy
    assert a["verdict"] == "refused" and a["drop"]["low"] > 0.01 and a["images"] == 100
    r = run_cli("run", str(image_sets["run"]), "--model", str(md), "-q")
    assert r.returncode == 0 and "running FP32" not in r.stderr
    r = run_cli("info", str(md))
    kept = read_metadata(ov.Core().read_model(md / "model_int8.xml")).accuracy["verdict"]
    assert "REFUSED" in r.stdout and {"passed": "PASSED", "inconclusive": "KEPT (inconclusive)"}[kept] in r.stdout

    for name in ("model_int8.xml", "model_int8.bin"):  # the folder of a first quantization refused
        (md / name).unlink()
    r = run_cli("run", str(image_sets["run"]), "--model", str(md), "-q")
    assert r.returncode == 0 and "running FP32: the INT8 model" in r.stderr and "refused" in r.stderr
    fp32_rows = read_csv(r.stdout)
    forced = read_csv(run_cli("run", str(image_sets["run"]), "--model", str(md), "--precision", "fp32").stdout)
    assert [row["top1_label"] for row in fp32_rows] == [row["top1_label"] for row in forced]


@pytest.mark.slow
def test_random_weights_with_24_photos_kept_with_a_thin_evidence_warning(tmp_path, offline_env):
    """What a smoke test does: hub weights (random here), 24 photos. Near-uniform outputs flip
    on near-ties; that is no accuracy loss, so INT8 is kept, and the weak check is said."""
    calib = tmp_path / "photos"
    calib.mkdir()
    for i in range(24):
        h, w = (120 + 7 * i, 160 + 11 * i)
        cv2.imwrite(str(calib / f"photo{i:02d}.jpg"), cv2.cvtColor(synthetic_photo(h, w, seed=i), cv2.COLOR_RGB2BGR))
    r = run_cli("convert", "--model", "mobilevitv2_050.cvnets_in1k", "--input-size", "96", "--calibration",
                str(calib), "-o", str(tmp_path / "m"), env=offline_env)
    assert r.returncode == 0, r.stderr
    assert "only 24 images checked: the INT8 check is weak" in r.stderr
    a = read_metadata(ov.Core().read_model(tmp_path / "m" / "model_int8.xml")).accuracy
    assert a["images"] == 24 and a["verdict"] == "passed" and a["drop"]["high"] < 0.001
    assert any("weak" in n for n in a["notes"])
    assert "INT8 check is weak" in run_cli("info", str(tmp_path / "m")).stdout
