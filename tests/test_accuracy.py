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
from edgeclass.model.calibration import list_images, load_set
from edgeclass.errors import EXIT_ACCURACY_GATE
from edgeclass.model.evaluate import predict_all, top1_accuracy
from edgeclass.model.modelinfo import read_metadata


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
    assert a["images"] == 200 and a["fp32_top1"] is not None
    assert a["fp32_top1"] - a["int8_top1"] <= 0.01
    assert a["passed"] is True and a["max_drop"] == 0.01
    assert meta.calibration["options"]["preset"] == "performance"
    assert meta.calibration["options"]["fast_bias_correction"] is False


def test_gate_rejects_int8_and_run_falls_back_to_fp32(tmp_path, trained_model_dir, image_sets):
    """Unlabelled validation: the gate compares top-1 agreement; the briefly trained model has
    many borderline images, so INT8 disagrees with FP32 on more than 1 % of them."""
    md = fp32_only_copy(trained_model_dir, tmp_path / "m")
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in list_images(image_sets["validation"]):
        shutil.copy(p, flat / p.rsplit("/", 1)[-1])
    r = run_cli("quantize", str(md), "--calibration", str(image_sets["calibration"]), "--validation", str(flat),
                "--max-drop", "0.1")
    assert r.returncode == EXIT_ACCURACY_GATE, r.stderr
    assert "failed the accuracy gate" in r.stderr and "disagreement" in r.stderr
    assert not (md / "model_int8.xml").exists() and (md / "model_int8.rejected.xml").exists()
    meta = read_metadata(ov.Core().read_model(md / "model_int8.rejected.xml"))
    assert meta.accuracy["passed"] is False and meta.accuracy["fp32_top1"] is None
    r = run_cli("run", str(image_sets["run"]), "--model", str(md))
    assert r.returncode == 0 and "precision fp32" in r.stderr
    r = run_cli("info", str(md))
    assert "FAILED" in r.stdout and "model_int8.rejected.xml" in r.stdout


def test_info_shows_everything(trained_model_dir):
    r = run_cli("info", str(trained_model_dir))
    assert r.returncode == 0, r.stderr
    for text in ("mobilevitv2_050", "4 (circle", "64x64", "160 images used", "NNCF", "top-1 agreement",
                 "PASSED", "model_int8.bin"):
        assert text in r.stdout, text


def test_accuracy_control_reverts_sensitive_layers(tmp_path, trained_model_dir, image_sets):
    """One calibration image gives poor INT8 ranges; with a labelled --validation and a tight
    --max-drop, NNCF's accuracy control keeps the most sensitive layers in float."""
    md = fp32_only_copy(trained_model_dir, tmp_path / "m")
    calib = tmp_path / "one"
    calib.mkdir()
    shutil.copy(list_images(image_sets["calibration"])[0], calib / "only.png")
    val = tmp_path / "val"
    for p in list_images(image_sets["validation"])[::4]:  # 50 labelled images, ImageFolder layout
        dest = val / p.rsplit("/", 2)[-2]
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    r = run_cli("quantize", str(md), "--calibration", str(calib), "--validation", str(val), "--max-drop", "0.5")
    meta_file = md / ("model_int8.xml" if r.returncode == 0 else "model_int8.rejected.xml")
    meta = read_metadata(ov.Core().read_model(meta_file))
    assert meta.calibration["accuracy_control"] is True
    assert meta.calibration["images_used"] == 1
    reverted = meta.calibration["reverted_to_float"]
    assert reverted, r.stderr
    assert "kept in float by accuracy control" in r.stderr and reverted[0] in r.stderr
    if r.returncode == 0:
        assert meta.accuracy["drop"] <= 0.005
