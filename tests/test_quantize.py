"""edgeclass quantize: NNCF on the IR, provenance in rt_info, calibration-set errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import openvino as ov

from conftest import fp32_only_copy, run_cli
from edgeclass.model.calibration import files_hash, list_images
from edgeclass.errors import EXIT_CALIBRATION
from edgeclass.modelfiles.metadata import read_metadata


def _fp32_only(tmp_path, trained_model_dir):
    return fp32_only_copy(trained_model_dir, tmp_path / "m")


def test_provenance_in_int8_rt_info(trained_model_dir, image_sets):
    meta = read_metadata(ov.Core().read_model(trained_model_dir / "model_int8.xml"))
    c = meta.calibration
    assert meta.precision == "int8"
    assert c["images_used"] == 160 and c["images_available"] == 160 and c["images_failed"] == 0
    assert c["files_sha256"] == files_hash(list_images(image_sets["calibration"]))
    assert c["nncf"] and c["openvino"] == ov.get_version()
    assert c["options"]["subset_size"] == 300 and c["options"]["model_type"] == "transformer"
    assert meta.labels == ("circle", "square", "triangle", "stripes")  # labels travel into INT8 too
    a = meta.accuracy
    assert a["source"] == "labelled validation images" and a["images"] == 200 and a["passed"] is True


def test_quantize_cli_subset_and_warning(tmp_path, trained_model_dir, image_sets):
    md = _fp32_only(tmp_path, trained_model_dir)
    r = run_cli("quantize", str(md), "--calibration", str(image_sets["calibration"]), "--subset-size", "40",
                "--max-drop", "100", "--fast-bias-correction")  # (bias correction is not what is tested here)
    assert r.returncode == 0, r.stderr
    meta = read_metadata(ov.Core().read_model(md / "model_int8.xml"))
    assert meta.calibration["images_used"] == 40 and meta.calibration["images_available"] == 160
    # the rest of the folder is held out to compare INT8 with FP32
    assert meta.accuracy["source"] == "held-out images (not used for calibration)"
    assert meta.accuracy["images"] == 120 and meta.accuracy["views"] == 1
    assert "fewer than the recommended 300" in r.stderr
    assert "uses 40 of 160 images" in r.stderr
    assert "expected accuracy drop" in r.stderr and "top-1 agreement" in r.stderr


def test_empty_calibration_folder_is_an_error(tmp_path, trained_model_dir):
    md = _fp32_only(tmp_path, trained_model_dir)
    empty = tmp_path / "calib"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    r = run_cli("quantize", str(md), "--calibration", str(empty))
    assert r.returncode == EXIT_CALIBRATION
    assert "has no images" in r.stderr and "calibration" in r.stderr
    assert not (md / "model_int8.xml").exists()


def test_undecodable_calibration_images_are_reported(tmp_path, trained_model_dir):
    md = _fp32_only(tmp_path, trained_model_dir)
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(3):
        (calib / f"bad{i}.jpg").write_bytes(b"\xff\xd8\xff garbage")
    r = run_cli("quantize", str(md), "--calibration", str(calib))
    assert r.returncode == EXIT_CALIBRATION
    assert "none of the 3 images" in r.stderr


def test_bad_options_exit_2_before_any_work(tmp_path):
    for args in (("convert", "--crop-pct", "2"), ("convert", "--interpolation", "lanczos"),
                 ("quantize", str(tmp_path), "--preset", "fast"), ("quantize", str(tmp_path), "--max-drop", "-1"),
                 ("quantize", str(tmp_path), "--model-type", "rnn"), ("convert", "--smooth-quant-alpha", "3")):
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr and "Invalid value" in r.stderr, args


def test_quantize_on_a_corrupt_ir_is_a_model_error(tmp_path, image_sets):
    md = tmp_path / "m"
    md.mkdir()
    (md / "model_fp32.xml").write_text("<net><layers>not an IR")
    (md / "model_fp32.bin").write_bytes(b"\0" * 16)
    r = run_cli("quantize", str(md), "--calibration", str(image_sets["calibration"]))
    assert r.returncode == 3, r.stderr
    assert "cannot read" in r.stderr and "model_fp32.xml" in r.stderr and "Traceback" not in r.stderr
    assert not (md / "model_int8.xml").exists()


def test_ignored_ops_stay_in_float_and_are_counted(tmp_path, trained_model_dir, image_sets):
    """--ignore keeps named ops in float, and quantized_ops() (what accuracy control's "ops kept
    in float" is counted with) sees INT8 inputs behind shape-only ops: the stem convolution
    takes its FakeQuantize through a Transpose, attention output projections through a Broadcast."""
    from edgeclass.model.quantize import quantized_ops

    # plain INT8 made here (--no-accuracy-control): the session's model may come from accuracy
    # control on some CPU classes, which keeps other ops in float
    base = _fp32_only(tmp_path / "plain", trained_model_dir)
    few = tmp_path / "few"  # 16 images: which ops are quantized does not depend on how many calibrate
    few.mkdir()
    for p in list_images(image_sets["calibration"])[::10]:
        shutil.copy(p, few / Path(p).name)
    # fast bias correction: which ops are quantized does not depend on it, and it is 3x quicker
    quick = ("--calibration", str(few), "--max-drop", "100", "--max-expected-drop", "100", "--no-accuracy-control",
             "--fast-bias-correction")
    r = run_cli("quantize", str(base), *quick)
    assert r.returncode == 0, r.stderr
    md = _fp32_only(tmp_path, trained_model_dir)
    convs = [op for op in ov.Core().read_model(md / "model_fp32.xml").get_ordered_ops()
             if op.get_type_name() == "Convolution"]
    stem = convs[0].get_friendly_name()
    out_proj = next(op.get_friendly_name() for op in convs if "attn.out_proj" in op.get_friendly_name())
    plain = quantized_ops(ov.Core().read_model(base / "model_int8.xml"))
    assert {stem, out_proj} <= plain
    r = run_cli("quantize", str(md), *quick, "--ignore", stem, "--ignore", out_proj)
    assert r.returncode == 0, r.stderr
    int8 = ov.Core().read_model(md / "model_int8.xml")
    assert read_metadata(int8).calibration["options"]["ignored_names"] == [stem, out_proj]
    kept = quantized_ops(int8)
    assert stem not in kept and out_proj not in kept
    assert plain - kept == {stem, out_proj} and kept <= plain
    for name, source in ((stem, "Transpose"), (out_proj, "Broadcast")):  # the shape op is there
        op = next(o for o in ov.Core().read_model(base / "model_int8.xml").get_ordered_ops()
                  if o.get_friendly_name() == name)
        assert op.input(0).get_source_output().get_node().get_type_name() == source
