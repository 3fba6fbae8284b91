"""The resampler against Pillow itself (the version the test extra pins), in process: odd sizes,
upscaling, extreme aspect ratios, one-pixel and one-row images, both filters, crops anywhere;
every test on both paths (the compiled pass and the NumPy one)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgeclass.media import resample, resample_native
from edgeclass.media.preprocess import PreprocessConfig, center_crop_offsets, resize_and_crop, resized_size
from edgeclass.media.resample import FILTERS, axis_plan, resample_crop

PIL_FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def resampler(request, monkeypatch):
    """Each test on both paths; the compiled one is skipped only where no C compiler could build it."""
    if request.param == "numpy":
        monkeypatch.setattr(resample, "axis_plan", resample.numpy_plan)  # the pass is chosen once, at import
    elif not resample_native.available():
        pytest.skip("edgeclass/media/_resample.c was not built (no C compiler at install)")
    return request.param


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


@pytest.mark.parametrize("seed", range(40))
def test_random_geometries_equal_pillow(seed):
    """Input sizes 1-699, output sizes 1-299 (down- and upscaling, extreme ratios) and crops drawn at random, both filters."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 700, 2))
    out_h, out_w = (int(v) for v in rng.integers(1, 300, 2))
    crop_h, crop_w = int(rng.integers(1, out_h + 1)), int(rng.integers(1, out_w + 1))
    top, left = int(rng.integers(0, out_h - crop_h + 1)), int(rng.integers(0, out_w - crop_w + 1))
    interpolation = ("bicubic", "bilinear")[seed % 2]
    img = _image(h, w, seed)
    ours = resample_crop(img, out_h, out_w, top, left, crop_h, crop_w, interpolation)
    assert np.array_equal(ours, _pil(img, out_h, out_w, interpolation)[top : top + crop_h, left : left + crop_w])


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
    monkeypatch.setattr(resample, "_CHUNK_VALUES", 4096)  # many row chunks (NumPy path)
    monkeypatch.setattr(resample, "_NATIVE_CHUNK_BYTES", 4096)  # (compiled pass)
    assert np.array_equal(resample_crop(img, 288, 384, 16, 64, 256, 256, "bicubic"), whole)
    assert np.array_equal(whole, _pil(img, 288, 384, "bicubic")[16:272, 64:320])


@pytest.mark.parametrize("max_product", [1 << 12, 5000, 1 << 18])
def test_products_split_into_column_chunks_give_the_same_result(monkeypatch, max_product):
    import edgeclass.media.resample as resample

    img = _image(540, 960, seed=5)  # a 1080p photo decoded at 1/2
    monkeypatch.setattr(resample, "_MAX_PRODUCT", max_product)  # 2**12: ~20 chunks; 5000: uneven widths
    ours = resample_crop(img, 288, 512, 16, 128, 256, 256, "bicubic")
    assert np.array_equal(ours, _pil(img, 288, 512, "bicubic")[16:272, 128:384])


def test_plans_are_cached_and_read_only():
    a = axis_plan(333, 288, 16, 256, "bicubic")
    assert axis_plan(333, 288, 16, 256, "bicubic") is a
    taps = [t for t in vars(a).values() if isinstance(t, resample_native.Taps)]  # the compiled pass's
    arrays = [v for part in (a, *taps) for v in vars(part).values() if isinstance(v, np.ndarray)]
    assert arrays and not any(v.flags.writeable for v in arrays)
    # each output's weights sum to one (PIL's fixed point: to within 2**-22 per tap)
    if isinstance(a, resample.NumpyPlan):
        weights = a.weights.reshape(-1, a.weights.shape[2])[: a.count]
    else:
        weights = a.along.coeffs / 2**22
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("interpolation", sorted(FILTERS))
def test_half_way_values_round_up_as_pillow_does(interpolation):
    # columns alternating a, a+1 halved: every horizontal output is exactly a + 0.5 in PIL's
    # fixed point (bilinear: (a + 3(a+1) + 3a + (a+1)) / 8), exactly, on both passes; each is
    # rounded up, as PIL does: round-half-even would give a for every even a.
    base = np.arange(0, 250, 5, dtype=np.uint8)[:, None] + (np.arange(64) % 2).astype(np.uint8)[None, :]
    img = np.repeat(base[:, :, None], 3, axis=2)
    ours = resample_crop(img, img.shape[0], 32, 0, 0, img.shape[0], 32, interpolation)
    assert np.array_equal(ours, _pil(img, img.shape[0], 32, interpolation))
    if interpolation == "bilinear":
        assert np.array_equal(ours[:, 1:-1, 0], np.repeat(base[:, :1] + 1, 30, axis=1))


@pytest.mark.parametrize("in_size,out_size", [(300, 288), (333, 288), (4000, 288), (97, 288), (960, 512)])
def test_the_numpy_pass_sums_exactly(in_size, out_size):
    """The NumPy pass's float64 products equal PIL's integer sums / 2**22 exactly (the module's
    argument: every partial sum is a multiple of 2**-22 below 2**9), on hard edges and noise."""
    plan = resample.numpy_plan(in_size, out_size, 0, out_size, "bicubic")
    rng = np.random.default_rng(in_size)
    lines = rng.integers(0, 256, (plan.lines[1] - plan.lines[0], 600))
    lines[:, :300] = np.where(lines[:, :300] > 127, 255, 0)  # hard edges: the largest sums of |w x|
    gathered = lines[plan.index].reshape(plan.weights.shape[0], plan.weights.shape[2], -1)
    fixed = np.rint(plan.weights * 2**22).astype(np.int64)
    assert np.array_equal(np.matmul(plan.weights, gathered.astype(np.float64)) * 2**22, np.matmul(fixed, gathered))
