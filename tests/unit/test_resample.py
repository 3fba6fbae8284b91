"""The resampler against Pillow itself (the version the test extra pins), in process: odd sizes,
upscaling, extreme aspect ratios, one-pixel and one-row images, both filters, crops anywhere."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgeclass.media.preprocess import PreprocessConfig, center_crop_offsets, resize_and_crop, resized_size
from edgeclass.media.resample import FILTERS, axis_plan, resample_crop

PIL_FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


def test_every_interpolation_the_ir_may_name_is_implemented():
    from edgeclass.media.preprocess import INTERPOLATIONS

    assert set(INTERPOLATIONS) == set(FILTERS)


def _pil(image, out_h, out_w, interpolation):
    return np.asarray(Image.fromarray(image).resize((out_w, out_h), PIL_FILTERS[interpolation]))


def _image(h, w, seed, smooth=True):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if smooth and min(h, w) > 8:  # photo-like: edges and flat parts, not only noise
        img[: h // 2] = img[: h // 2] // 4 + 180
    return img


@pytest.mark.parametrize("interpolation", sorted(FILTERS))
@pytest.mark.parametrize("hw,out", [
    ((1, 1), (5, 7)), ((1, 1), (1, 1)), ((1, 900), (3, 64)), ((900, 1), (64, 3)), ((2, 3), (9, 13)),
    ((7, 5), (7, 5)), ((300, 257), (288, 246)), ((333, 517), (288, 447)), ((1080, 1920), (288, 512)),
    ((97, 150), (288, 445)), ((3, 2000), (1, 600)), ((4000, 3), (500, 1)), ((256, 256), (288, 288)),
])
def test_whole_resize_equals_pillow(hw, out, interpolation):
    img = _image(*hw, seed=hw[0] * 7 + hw[1])
    ours = resample_crop(img, *out, 0, 0, *out, interpolation)
    assert np.array_equal(ours, _pil(img, *out, interpolation))


@pytest.mark.parametrize("interpolation", sorted(FILTERS))
@pytest.mark.parametrize("hw", [(301, 517), (256, 350), (4000, 3000), (77, 333), (288, 288), (150, 97)])
@pytest.mark.parametrize("size,crop_pct", [(256, 0.888), (64, 0.875), (384, 1.0)])
def test_crop_equals_pillow_resize_then_crop(hw, size, crop_pct, interpolation):
    cfg = PreprocessConfig(input_size=(size, size), crop_pct=crop_pct, interpolation=interpolation)
    img = _image(*hw, seed=size + hw[1])
    oh, ow = resized_size(*hw, cfg.resize_shorter)
    top, left = center_crop_offsets(oh, ow, size, size)
    ref = _pil(img, oh, ow, interpolation)[top : top + size, left : left + size]
    assert np.array_equal(resize_and_crop(img, cfg), ref)


def test_large_images_are_done_in_chunks_with_the_same_result(monkeypatch):
    import edgeclass.media.resample as resample

    img = _image(1200, 1600, seed=3)
    whole = resample_crop(img, 288, 384, 16, 64, 256, 256, "bicubic")
    monkeypatch.setattr(resample, "_CHUNK_VALUES", 4096)  # many row chunks
    assert np.array_equal(resample_crop(img, 288, 384, 16, 64, 256, 256, "bicubic"), whole)
    assert np.array_equal(whole, _pil(img, 288, 384, "bicubic")[16:272, 64:320])


def test_plans_are_cached_and_read_only():
    a = axis_plan(333, 288, 16, 256, "bicubic")
    assert axis_plan(333, 288, 16, 256, "bicubic") is a
    assert not a.weights.flags.writeable and not a.index.flags.writeable
    # each output's weights sum to one (PIL's fixed point: to within 2**-22 per tap)
    assert np.allclose(a.weights.sum(axis=2).reshape(-1)[: a.count], 1.0, atol=1e-5)
