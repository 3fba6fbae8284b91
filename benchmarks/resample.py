#!/usr/bin/env python
"""The exact resampler against its NumPy fallback, another version of itself, or Pillow, where
`run` uses it: right after the image's own decode (which evicts the caches), on one thread.

A loop resizing one image over and over keeps the resampler's temporaries in the cache and
flatters it (a 1080p image at 1/2: 1.0-1.4 ms there, 1.8-2.3 ms after a decode, same moment).
Here each image is decoded as `run` decodes it (JPEG DCT scaling), then resized and cropped
(timm's 288 short side, 256 crop, bicubic) by this tree's `edgeclass/media/resample.py` and by
the one at git REF (with REF's `resample_native.py`), the two in random order image by image, the decode repeated before each so
both start cold; only the resize is timed (`time.thread_time`). Both must give the same bytes.
Per input class: milliseconds per image of each (median of the rounds, and the rounds), and the
median of the per-round ratios this/REF.

With ``--base numpy`` (the default), the other side is this tree's own NumPy pass (the compiled
pass, ``edgeclass/media/_resample.c``, switched off for it alone): what an install without a C
compiler costs. (With ``EDGECLASS_RESAMPLER=numpy`` set, both sides take the NumPy pass: with
``--base REF``, this tree's NumPy pass against REF's.)
With ``--base pillow``, the other side is Pillow's own C resampler (``Image.resize`` with the
crop's ``box``: the same outputs, computed in fixed point by scalar C; ``Image.fromarray`` counted):
what compiling the same arithmetic without SIMD would give. Its box centres are computed from
the box, not the output index, and differ in the last bit on some sizes: up to 1 grey level is
allowed there (Pillow's whole resize + crop equals this tree's bytes: tests/unit check that).

``--profile`` also counts the calls each side makes per image (cProfile): Python functions (the
GIL held throughout), and C functions (NumPy, OpenCV, ctypes: the heavy ones release the GIL).

Usage: python -m benchmarks.resample [--base numpy|REF|pillow] [--rounds 5] [--images 100] [--work DIR] [--profile]
Input classes as throughput.py's (small JPEG, 1080p JPEG, 12 MP JPEG, PNG 800x600), generated
into --work once.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks._common import CLASSES, REPO, class_folder, cpu_name, decode_jobs


def load_resample(source: str, name: str):
    """edgeclass/media/resample.py as it is in ``source`` (its text), as a module of its own."""
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Pillow:
    """``resample_crop`` by Pillow's own C code: ``Image.resize`` of the crop's box."""

    @staticmethod
    def resample_crop(image, out_h, out_w, top, left, crop_h, crop_w, interpolation):
        from PIL import Image

        sx, sy = image.shape[1] / out_w, image.shape[0] / out_h
        box = (left * sx, top * sy, (left + crop_w) * sx, (top + crop_h) * sy)
        method = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[interpolation]
        return np.asarray(Image.fromarray(image).resize((crop_w, crop_h), method, box=box))


def crop(module, image: np.ndarray) -> np.ndarray:
    from edgeclass.media.preprocess import center_crop_offsets, resized_size

    h, w = image.shape[:2]
    oh, ow = resized_size(h, w, 288)
    top, left = center_crop_offsets(oh, ow, 256, 256)
    return module.resample_crop(image, oh, ow, top, left, 256, 256, "bicubic")


def compare(modules: dict, work: list, rounds: int, rng: random.Random, tolerance: int = 0) -> dict[str, list[float]]:
    """ms per image of each module, per round."""
    for buf, flag in work[:5]:  # warm-up; and the same bytes from both
        image = cv2.imdecode(buf, flag)
        a, b = (crop(m, image).astype(np.int16) for m in modules.values())
        if np.abs(a - b).max() > tolerance:
            raise SystemExit("the two resamplers give different bytes")
    per_round = {name: [] for name in modules}
    for _ in range(rounds):
        spent = dict.fromkeys(modules, 0.0)
        for buf, flag in work:
            order = list(modules)
            rng.shuffle(order)
            for name in order:
                image = cv2.imdecode(buf, flag)  # its decode just before: the cache as `run` leaves it
                t0 = time.thread_time()
                crop(modules[name], image)
                spent[name] += time.thread_time() - t0
        for name in modules:
            per_round[name].append(spent[name] / len(work) * 1e3)
    return per_round


def numpy_path():
    """This tree's resampler with the NumPy pass chosen (for this module alone)."""
    module = load_resample((REPO / "edgeclass/media/resample.py").read_text(), "resample_numpy")
    module.axis_plan = module.numpy_plan
    return module


def calls_per_image(module, jobs: list) -> tuple[float, float]:
    """(Python, C) function calls per resize + crop (cProfile), the plans already cached."""
    import cProfile
    import pstats

    images = [cv2.imdecode(buf, flag) for buf, flag in jobs[:20]]
    for image in images:
        crop(module, image)
    profile = cProfile.Profile()
    profile.enable()
    for image in images:
        crop(module, image)
    profile.disable()
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (primitive calls, calls, ...)
    python = sum(v[1] for k, v in stats.items() if k[0] != "~")
    return python / len(images), sum(v[1] for k, v in stats.items() if k[0] == "~") / len(images)


def base_module(base: str):
    if base == "pillow":
        return Pillow()
    if base == "numpy":
        return numpy_path()
    module = load_resample(base_source(base), "resample_base")
    # with REF's own wrapper of the compiled pass (the same built library)
    module.resample_native = load_resample(base_source(base, "resample_native.py"), "resample_native_base")
    return module


def base_source(ref: str, name: str = "resample.py") -> str:
    return subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:edgeclass/media/{name}"],
                          capture_output=True, text=True, check=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="numpy", help="'numpy', a git ref of the resampler to compare with, or 'pillow'")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--images", type=int, default=100, help="images per class (at most the class's set)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgeclass-bench")
    ap.add_argument("--profile", action="store_true", help="also the Python and C calls per image of each side")
    args = ap.parse_args()

    from edgeclass.media.workers import keep_freed_memory

    keep_freed_memory()  # as in `run`: no page faults on the decoded images and temporaries
    cv2.setNumThreads(1)
    from edgeclass.media import resample_native

    if not resample_native.available():
        print("note: the compiled pass is not built here (or EDGECLASS_RESAMPLER=numpy): 'this' is the NumPy path")
    modules = {"this": load_resample((REPO / "edgeclass/media/resample.py").read_text(), "resample_this"),
               args.base: base_module(args.base)}
    rng = random.Random(0)
    print(f"resize + crop right after each image's decode, one thread, ms per image "
          f"(medians of {args.rounds} rounds); this tree against {args.base}; {cpu_name()}")
    for name in CLASSES:
        folder = class_folder(args.work, name)
        jobs = decode_jobs(folder, args.images)
        times = compare(modules, jobs, args.rounds, rng, int(args.base == "pillow"))
        ratios = [a / b for a, b in zip(times["this"], times[args.base])]
        print(f"  {name:<12}  this {statistics.median(times['this']):.3f}  {args.base} "
              f"{statistics.median(times[args.base]):.3f}  ratio {statistics.median(ratios):.3f} "
              f"(rounds {min(ratios):.3f}-{max(ratios):.3f})")
        if args.profile:
            calls = {side: calls_per_image(module, jobs) for side, module in modules.items()}
            print("  " + " " * 12 + "  calls per image, Python + C: " +
                  "; ".join(f"{side} {py:.0f} + {c:.0f}" for side, (py, c) in calls.items()))


if __name__ == "__main__":
    main()
