"""edgeclass convert: hub path (offline cache), checkpoints, labels, clear errors."""

from __future__ import annotations

import pickle

import openvino as ov
import pytest
import torch

from conftest import run_cli
from edgeclass.errors import EXIT_MODEL, EXIT_USAGE
from edgeclass.modelfiles.metadata import read_metadata


def _meta(xml):
    return read_metadata(ov.Core().read_model(xml))


def test_hub_path_offline_cache(tmp_path, offline_env):
    out = tmp_path / "m"
    r = run_cli("convert", "--model", "mobilevitv2_050.cvnets_in1k", "--no-int8", "-o", str(out), env=offline_env)
    assert r.returncode == 0, r.stderr
    meta = _meta(out / "model_fp32.xml")
    assert meta.model_name == "mobilevitv2_050.cvnets_in1k"
    assert meta.weights_origin == "hf-hub:timm/mobilevitv2_050.cvnets_in1k"
    assert meta.num_classes == 1000
    assert meta.labels[0].startswith("tench")  # ImageNet names from timm
    pp = meta.preprocess
    assert (pp.input_size, pp.crop_pct, pp.interpolation, pp.mean, pp.std, pp.channel_order) == (
        (256, 256), 0.888, "bicubic", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "RGB")
    assert pp.input_channel_order == "BGR"  # OpenCV's order; the swap to RGB is inside the graph
    assert meta.versions["openvino"] == ov.get_version()
    assert "edgeclass" in meta.versions and "timm" in meta.versions
    assert meta.num_params == 1_370_593
    model = ov.Core().read_model(out / "model_fp32.xml")
    # Model API keys, a u8 NHWC input with a dynamic batch, softmax probabilities out
    info = {key: model.get_rt_info(["model_info", key]).astype(str) for key in model.get_rt_info()["model_info"]}
    assert info["model_type"] == "Classification"
    # normalisation and the BGR->RGB swap are in the graph: Model API must add neither
    assert (info["mean_values"], info["scale_values"], info["reverse_input_channels"]) == ("0 0 0", "1 1 1", "False")
    assert (info["embedded_processing"], info["resize_type"], info["orig_height"], info["orig_width"]) == (
        "False", "crop", "256", "256")
    assert (info["topk"], info["output_raw_scores"], info["multilabel"]) == ("5", "True", "False")
    labels = info["labels"].split()  # as Model API splits them
    assert len(labels) == 1000 and labels[281] == "tabby,_tabby_cat" and meta.labels[281] == "tabby, tabby cat"
    assert model.inputs[0].get_element_type() == ov.Type.u8
    assert str(model.inputs[0].get_partial_shape()) == "[?,256,256,3]"
    assert "INT8 skipped" in r.stderr and "--no-int8" in r.stderr
    assert not (out / "model_int8.xml").exists()


def test_offline_without_cache_says_what_to_do(tmp_path):
    r = run_cli("convert", "--model", "mobilevitv2_075.cvnets_in1k", "--no-int8", "-o", str(tmp_path / "m"),
                env={"HF_HOME": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == EXIT_MODEL
    assert "--weights" in r.stderr and "HF_HOME" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_model_lists_valid_names(tmp_path):
    r = run_cli("convert", "--model", "resnet50", "--no-int8", "-o", str(tmp_path / "m"))
    assert r.returncode == EXIT_USAGE
    assert "mobilevitv2_075.cvnets_in1k" in r.stderr and "mobilevitv2_200.cvnets_in22k_ft_in1k_384" in r.stderr


def test_finetuned_checkpoint_class_count_and_labels(trained_model_dir, trained_dir):
    meta = _meta(trained_model_dir / "model_fp32.xml")
    assert meta.labels == ("circle", "square", "triangle", "stripes")
    assert meta.weights_origin.startswith("file:") and "sha256:" in meta.weights_origin
    assert meta.preprocess.input_size == (64, 64)  # --input-size beats the model's 256
    assert meta.preprocess.crop_pct == 0.875
    model = ov.Core().read_model(trained_model_dir / "model_fp32.xml")
    assert str(model.outputs[0].get_partial_shape()) == "[?,4]"
    # Model API's top-k fails when k exceeds the class count
    assert model.get_rt_info(["model_info", "topk"]).astype(str) == "4"


def test_labels_count_must_match(tmp_path, trained_dir):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    r = run_cli("convert", "--model", "mobilevitv2_050", "--weights", str(trained_dir / "checkpoint.safetensors"),
                "--labels", str(labels), "--no-int8", "-o", str(tmp_path / "m"))
    assert r.returncode == EXIT_USAGE
    assert "3 labels" in r.stderr and "4 classes" in r.stderr


def test_finetuned_without_labels_asks_for_them(tmp_path, trained_dir):
    r = run_cli("convert", "--model", "mobilevitv2_050", "--weights", str(trained_dir / "checkpoint.safetensors"),
                "--no-int8", "-o", str(tmp_path / "m"))
    assert r.returncode == EXIT_USAGE
    assert "--labels" in r.stderr


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pth_is_loaded_weights_only(tmp_path):
    ckpt = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "obj": Evil()}, ckpt, pickle_module=pickle)
    r = run_cli("convert", "--model", "mobilevitv2_050", "--weights", str(ckpt), "--no-int8", "-o", str(tmp_path / "m"))
    assert r.returncode == EXIT_MODEL
    assert "weights_only" in r.stderr
    assert "pwned" not in r.stdout


def test_wrong_width_checkpoint(tmp_path):
    import timm

    ckpt = tmp_path / "w100.pth"
    torch.save(timm.create_model("mobilevitv2_100", num_classes=3).state_dict(), ckpt)
    r = run_cli("convert", "--model", "mobilevitv2_050", "--weights", str(ckpt), "--no-int8", "-o", str(tmp_path / "m"))
    assert r.returncode == EXIT_MODEL
    assert "does not fit mobilevitv2_050" in r.stderr


def test_missing_calibration_keeps_fp32(tmp_path, offline_env):
    out = tmp_path / "m"
    r = run_cli("convert", "--model", "mobilevitv2_050.cvnets_in1k", "-o", str(out),
                "--calibration", str(tmp_path / "nothing-here"), env=offline_env)
    assert r.returncode == 0, r.stderr
    assert (out / "model_fp32.xml").exists() and not (out / "model_int8.xml").exists()
    assert "does not exist" in r.stderr and "calibration" in r.stderr
