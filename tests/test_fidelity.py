"""The FP32 IR answers like PyTorch + timm's own evaluation transform (PIL decode and resize).

Measured tolerance (this machine): max |Δp| about 1e-4 on PNGs; the remaining difference is
PIL's fixed-point resampling vs our float32 (at most one grey level on <2% of pixels) plus
OpenVINO vs PyTorch float arithmetic. We assert 2e-3 (an order of magnitude of headroom) and
identical top-1. JPEGs add decoder differences (libjpeg builds in PIL and OpenCV), so they
get a looser bound.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import synthetic_photo
from edgeclass.media.decode import DecodeOptions, load_image_tensor
from edgeclass.engine import Classifier, EngineOptions
from edgeclass.modelfiles.folder import ModelDir

SIZES = [(1080, 1920), (1536, 2048), (480, 640), (333, 517), (900, 300), (150, 120)]


@pytest.fixture(scope="module")
def fidelity_model(accurate_dir, tmp_path_factory):
    """The trained checkpoint at MobileViTv2's own eval config (256 crop of a 288 resize, bicubic).

    The confident "colours" model: like a real classifier, its outputs are not balanced on a
    knife edge, so the reduced-decode bound below measures the decoder rather than a borderline
    model's amplification (the hard "shapes" model moves up to 0.13 there, same top-1)."""
    trained_dir = accurate_dir
    from edgeclass.model.convert import ConvertOptions, convert

    out = tmp_path_factory.mktemp("fidelity") / "m"
    convert(ConvertOptions(model="mobilevitv2_050", weights=trained_dir / "checkpoint.safetensors",
                           labels=trained_dir / "labels.txt", output=out, int8=False))
    import timm
    from safetensors.torch import load_file

    model = timm.create_model("mobilevitv2_050", num_classes=4)
    model.load_state_dict(load_file(str(trained_dir / "checkpoint.safetensors")))
    return out, model.eval()


def reference_probs(model, path) -> np.ndarray:
    import timm.data

    cfg = timm.data.resolve_data_config({}, model=model)
    tf = timm.data.create_transform(**cfg)
    with torch.no_grad():
        return torch.softmax(model(tf(Image.open(path).convert("RGB"))[None]), 1)[0].numpy()


@pytest.mark.parametrize("ext,tol", [(".png", 2e-3), (".jpg", 2e-2)])
def test_fp32_ir_matches_pytorch_reference(fidelity_model, tmp_path, ext, tol):
    out, model = fidelity_model
    clf = Classifier(ModelDir(out), EngineOptions(precision="fp32"))
    pp = clf.metadata.preprocess
    assert (pp.input_size, pp.resize_shorter, pp.interpolation) == ((256, 256), 288, "bicubic")
    diffs, spreads = [], []
    for i, (h, w) in enumerate(SIZES):
        path = tmp_path / f"img{i}{ext}"
        cv2.imwrite(str(path), cv2.cvtColor(synthetic_photo(h, w, seed=i), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        ref = reference_probs(model, path)
        ours = clf.infer(load_image_tensor(path, pp, DecodeOptions(reduced_decode=False))[None])[0]
        assert ours.argmax() == ref.argmax(), (h, w)
        diffs.append(np.abs(ours - ref).max())
        spreads.append(ref.max() - ref.min())
    print(f"{ext}: max |dp| per image {np.round(diffs, 6).tolist()}")
    assert max(diffs) < tol
    assert max(spreads) > 0.2  # the outputs are not near-uniform: the comparison can fail


def test_reduced_decode_stays_close(fidelity_model, tmp_path):
    """DCT-scaled JPEG decoding (the default for big JPEGs) vs full decoding: measured, bounded."""
    out, _ = fidelity_model
    clf = Classifier(ModelDir(out), EngineOptions(precision="fp32"))
    pp = clf.metadata.preprocess
    diffs, same = [], 0
    for i, (h, w) in enumerate([(1080, 1920), (1536, 2048), (2448, 3264)]):
        path = tmp_path / f"big{i}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(synthetic_photo(h, w, seed=10 + i), cv2.COLOR_RGB2BGR))
        full = clf.infer(load_image_tensor(path, pp, DecodeOptions(reduced_decode=False))[None])[0]
        fast = clf.infer(load_image_tensor(path, pp, DecodeOptions(reduced_decode=True))[None])[0]
        diffs.append(float(np.abs(full - fast).max()))
        same += int(full.argmax() == fast.argmax())
    print(f"reduced vs full decode: max |dp| {np.round(diffs, 5).tolist()}")
    assert same == 3
    assert max(diffs) < 0.05
