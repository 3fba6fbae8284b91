"""Model folders written by the release before the BGR input contract keep working.

Those IRs take RGB (the channel swap was done by the decoder, in Python) and their metadata has
no ``input_channel_order``. The folder is written here exactly as that release wrote it: the
same graph without the in-graph swap, its ``model_info`` values, its metadata JSON.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest

from conftest import read_csv, run_cli, synthetic_photo
from edgeclass.engine import Classifier, EngineOptions
from edgeclass.media.decode import DecodeOptions, load_image_tensor
from edgeclass.modelfiles.folder import ModelDir
from edgeclass.modelfiles.metadata import read_metadata


# rt_info/model_info as the previous release wrote it (edgeclass/model/modelinfo.py before the change)
def _legacy_model_info(meta) -> dict[str, str]:
    pp = meta.preprocess
    return {
        "model_type": "Classification",
        "labels": " ".join(label.replace(" ", "_") for label in meta.labels),
        "resize_type": "crop",
        "mean_values": " ".join(f"{m * 255:g}" for m in pp.mean),
        "scale_values": " ".join(f"{s * 255:g}" for s in pp.std),
        "reverse_input_channels": "True",
        "embedded_processing": "True",
        "orig_width": str(pp.input_size[1]),
        "orig_height": str(pp.input_size[0]),
        "topk": "5",
    }


@pytest.fixture(scope="module")
def folders(trained_dir, trained_model_dir, tmp_path_factory) -> tuple[Path, Path]:
    """(legacy RGB-input folder, current BGR-input folder) of the same trained weights."""
    from edgeclass.model.export import torch_to_ov
    from edgeclass.model.timm_loader import load_model

    current = read_metadata(ov.Core().read_model(trained_model_dir / "model_fp32.xml"))
    pp = current.preprocess
    loaded = load_model("mobilevitv2_050", weights=trained_dir / "checkpoint.safetensors",
                        labels_file=trained_dir / "labels.txt", input_size=pp.input_size[0], crop_pct=pp.crop_pct)
    legacy_pp = replace(loaded.preprocess, input_channel_order="RGB")  # the IR takes RGB: no swap in the graph
    assert not legacy_pp.swap_in_graph
    model = torch_to_ov(loaded.model, legacy_pp)
    doc = json.loads(current.with_updates(preprocess=legacy_pp).to_json())
    del doc["preprocess"]["input_channel_order"]  # the field did not exist
    for key, value in _legacy_model_info(current).items():
        model.set_rt_info(value, ["model_info", key])
    model.set_rt_info(json.dumps(doc, sort_keys=True), ["edgeclass", "metadata"])
    legacy = tmp_path_factory.mktemp("legacy") / "m"
    legacy.mkdir()
    ov.save_model(model, legacy / "model_fp32.xml", compress_to_fp16=False)
    return legacy, trained_model_dir


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Small and large JPEGs (the large ones take the DCT-reduced decode path), a PNG, a video."""
    d = tmp_path_factory.mktemp("compat_inputs")
    for i, (h, w) in enumerate([(96, 128), (150, 110), (1080, 1440), (70, 70)]):
        cv2.imwrite(str(d / f"img{i}.jpg"), cv2.cvtColor(synthetic_photo(h, w, seed=40 + i), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(d / "img9.png"), cv2.cvtColor(synthetic_photo(120, 90, seed=49), cv2.COLOR_RGB2BGR))
    writer = cv2.VideoWriter(str(d / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (128, 96))
    for i in range(10):
        writer.write(cv2.cvtColor(synthetic_photo(96, 128, seed=60 + i // 5), cv2.COLOR_RGB2BGR))
    writer.release()
    return d


def test_legacy_metadata_reads_as_rgb_input(folders):
    legacy, current = folders
    old = read_metadata(ov.Core().read_model(legacy / "model_fp32.xml")).preprocess
    new = read_metadata(ov.Core().read_model(current / "model_fp32.xml")).preprocess
    assert (old.channel_order, old.input_channel_order, old.swap_in_graph) == ("RGB", "RGB", False)
    assert (new.channel_order, new.input_channel_order, new.swap_in_graph) == ("RGB", "BGR", True)


def test_legacy_folder_runs_like_the_current_one(folders, inputs):
    """Same rows, labels and scores from both folders: the colour conversion happens once, in the
    right place, for images (full and reduced decode) and video frames alike."""
    legacy, current = folders
    rows = {}
    for name, folder in (("legacy", legacy), ("current", current)):
        r = run_cli("run", str(inputs), "--model", str(folder), "--precision", "fp32", "-k", "4", "--every-frame", "1")
        assert r.returncode == 0, r.stderr
        rows[name] = read_csv(r.stdout)
    assert len(rows["current"]) == 5 + 10  # five images, ten video frames
    assert [r["source"] for r in rows["legacy"]] == [r["source"] for r in rows["current"]]
    for old, new in zip(rows["legacy"], rows["current"]):
        assert old["status"] == new["status"] == "ok"
        assert (old["top1_label"], old["frame"]) == (new["top1_label"], new["frame"]), old["source"]
        for k in range(1, 5):
            assert old[f"top{k}_id"] == new[f"top{k}_id"]
            assert abs(float(old[f"top{k}_score"]) - float(new[f"top{k}_score"])) <= 2e-6


def test_channel_order_matters_for_this_model(folders, inputs):
    """The comparison above can fail: feeding the legacy IR the wrong order changes its output."""
    legacy, _ = folders
    with Classifier(ModelDir(legacy), EngineOptions(precision="fp32")) as clf:
        pp = clf.metadata.preprocess
        right = clf.infer(load_image_tensor(inputs / "img0.jpg", pp, DecodeOptions())[None])[0]
        wrong_pp = replace(pp, input_channel_order="BGR")
        wrong = clf.infer(load_image_tensor(inputs / "img0.jpg", wrong_pp, DecodeOptions())[None])[0]
    assert np.abs(right - wrong).max() > 1e-3


def test_info_names_the_input_order(folders):
    legacy, current = folders
    wide = {"COLUMNS": "400"}  # one table row per line
    old = run_cli("info", str(legacy), env=wide)
    new = run_cli("info", str(current), env=wide)
    assert old.returncode == 0 and new.returncode == 0, old.stderr + new.stderr
    assert "RGB u8 (network RGB)" in old.stdout
    assert "BGR u8 (network RGB)" in new.stdout
    # each IR's model id (the `model` column of its rows): same weights, another graph, another id
    ids = [next(line for line in r.stdout.splitlines() if "model id" in line) for r in (old, new)]
    assert f"{legacy.name}@" in ids[0] and f"{current.name}@" in ids[1] and ids[0].split("@")[1] != ids[1].split("@")[1]
