"""The preprocessing path against timm's own evaluation transform (PIL, antialiased resize)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, synthetic_photo
from edgeclass.media.preprocess import (
    PreprocessConfig,
    center_crop_offsets,
    reduction_factor,
    resize_and_crop,
    resized_size,
)


def timm_reference(image: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """timm's eval transform on a PIL image, back to HxWx3 uint8 (it only scales by 1/255)."""
    import timm.data

    tf = timm.data.create_transform(
        input_size=(3, *cfg.input_size), crop_pct=cfg.crop_pct, interpolation=cfg.interpolation,
        mean=(0, 0, 0), std=(1, 1, 1),
    )
    return np.round(tf(Image.fromarray(image)).numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


SIZES = [(1080, 1920), (3000, 2000), (480, 640), (301, 517), (288, 400), (256, 256), (150, 97), (77, 333)]


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("cfg", [PreprocessConfig(), PreprocessConfig(input_size=(96, 96), crop_pct=0.875),
                                 PreprocessConfig(crop_pct=1.0, interpolation="bilinear")], ids=["256", "96", "bilinear"])
def test_matches_timm_transform(hw, cfg):
    img = synthetic_photo(*hw, seed=hw[0])
    ours = resize_and_crop(img, cfg).astype(int)
    ref = timm_reference(img, cfg).astype(int)
    assert ours.shape == ref.shape == (*cfg.input_size, 3)
    # PIL's own integer weights, applied in exact arithmetic: the same bytes as Pillow (pinned < 13)
    assert np.array_equal(ours, ref)


def test_opencv_bicubic_is_not_pil_when_shrinking():
    """Why we do not use cv2.INTER_CUBIC: on a large photo it aliases and drifts from PIL."""
    import cv2

    cfg = PreprocessConfig()
    img = synthetic_photo(1080, 1920, seed=5)
    oh, ow = resized_size(1080, 1920, cfg.resize_shorter)
    top, left = center_crop_offsets(oh, ow, 256, 256)
    cv = cv2.resize(img, (ow, oh), interpolation=cv2.INTER_CUBIC)[top:top + 256, left:left + 256].astype(int)
    ref = timm_reference(img, cfg).astype(int)
    ours = resize_and_crop(img, cfg).astype(int)
    assert np.abs(cv - ref).mean() > 5 * np.abs(ours - ref).mean()
    assert np.abs(cv - ref).max() > 10


def test_sizes_and_offsets_follow_torchvision():
    assert resized_size(1080, 1920, 288) == (288, 512)
    assert resized_size(1920, 1080, 288) == (512, 288)
    assert resized_size(100, 333, 288) == (288, 959)
    assert center_crop_offsets(288, 513, 256, 256) == (16, 128)  # 128.5 rounds half to even
    assert PreprocessConfig().resize_shorter == 288
    assert PreprocessConfig(crop_pct=1.0, input_size=(384, 384)).resize_shorter == 384


def test_reduction_factor_keeps_short_side_above_target():
    cfg = PreprocessConfig()
    assert reduction_factor(1080, 1920, cfg) == 2  # 540 >= 288, 270 < 288
    assert reduction_factor(3000, 4000, cfg) == 8  # 375
    assert reduction_factor(400, 600, cfg) == 1
    assert reduction_factor(2304, 4096, cfg) == 8  # exactly 288


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        resize_and_crop(np.zeros((10, 10), np.uint8), PreprocessConfig())
    with pytest.raises(ValueError):
        PreprocessConfig(interpolation="lanczos")


def test_crop_does_not_depend_on_blas_threads(tmp_path):
    """A Ray actor runs with OMP_NUM_THREADS=1, a box with all cores: the same image must give
    the same crop (float32 BLAS kernels differ with the thread count and flipped pixels at .5)."""
    import subprocess
    import sys

    code = (
        "import sys, hashlib, numpy as np; sys.path[:0] = [{repo!r}, {scripts!r}]\n"
        "import train_test_model as t\n"
        "from edgeclass.media.preprocess import PreprocessConfig, resize_and_crop\n"
        "rng = np.random.default_rng(1)\n"
        "pp = PreprocessConfig(input_size=(64, 64), crop_pct=0.875)\n"
        "crops = [resize_and_crop(t.make_image(int(rng.integers(0, 4)), rng, (480, 640)), pp) for _ in range(20)]\n"
        "print(hashlib.sha1(b''.join(c.tobytes() for c in crops)).hexdigest())\n"
    ).format(repo=str(REPO), scripts=str(REPO / "scripts"))
    digests = set()
    for threads in ("1", "2"):
        env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
        env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        digests.add(r.stdout.strip())
    assert len(digests) == 1



_BLAS_PROBE = """
import json, os, threading
import numpy as np
from edgeclass.media.preprocess import PreprocessConfig, resize_and_crop

me = str(threading.get_native_id())

def ticks():  # CPU ticks of every other thread of the process
    out = {}
    for tid in os.listdir("/proc/self/task"):
        fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        if tid != me:
            out[tid] = int(fields[11]) + int(fields[12])
    return out

def other_threads_ticks(work):
    before = ticks()
    work()
    return sum(t - before.get(tid, 0) for tid, t in ticks().items())

rng = np.random.default_rng(0)
images = [rng.integers(0, 256, hw + (3,), dtype=np.uint8) for hw in ((3000, 4000), (6000, 8000), (300, 20000))]
config = PreprocessConfig(input_size=(256, 256), crop_pct=0.875)
work = lambda: [resize_and_crop(image, config) for image in images]
work()  # first-call costs out of the way
import time
for _ in range(50):  # a thread OpenCV starts at import (the first call imports it) works ~30 ms on its own: let it finish
    quiet = ticks()
    time.sleep(0.1)
    if ticks() == quiet:
        break
resize = other_threads_ticks(work)
big = rng.random((1500, 1500))
control = other_threads_ticks(lambda: [big @ big for _ in range(4)])  # a product BLAS does thread
print(json.dumps({"control": control, "resize": resize}))
"""


@pytest.mark.parametrize("resampler", ["compiled", "numpy"])
def test_exact_resize_runs_in_the_calling_thread_only(resampler):
    """The resampler runs in the decode workers: it must not borrow other threads (OpenBLAS's
    own pool once made preprocessing 3-4x slower on 2 cores). The NumPy path keeps its products
    below OpenBLAS's threading threshold and the compiled pass has no threads, so no other
    thread of the process works while it resizes 12, 48 and 6 MP images (CPU ticks of every
    other thread, in a fresh process); a large product in the same process shows the probe sees
    BLAS's threads when they do work."""
    import json
    import os
    import subprocess
    import sys

    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    if not blas or max(i["num_threads"] for i in blas) < 2:
        pytest.skip("NumPy's BLAS runs one thread here anyway")
    env = {**os.environ, "EDGECLASS_RESAMPLER": resampler}  # "compiled": not a switch, the default path
    proc = subprocess.run([sys.executable, "-c", _BLAS_PROBE], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ticks = json.loads(proc.stdout.strip().splitlines()[-1])
    assert ticks["control"] >= 5, ticks  # BLAS's own threads joined the large product
    assert ticks["resize"] <= 1, ticks
