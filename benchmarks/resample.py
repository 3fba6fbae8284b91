#!/usr/bin/env python
"""The exact resampler against another version of itself, where `run` uses it: right after the
image's own decode (which evicts the caches), on one thread.

A loop resizing one image over and over keeps the resampler's temporaries in the cache and
flatters it (a 1080p image at 1/2: 1.0-1.4 ms there, 1.8-2.3 ms after a decode, same moment).
Here each image is decoded as `run` decodes it (JPEG DCT scaling), then resized and cropped
(timm's 288 short side, 256 crop, bicubic) by this tree's `edgeclass/media/resample.py` and by
the one at git REF, the two in random order image by image, the decode repeated before each so
both start cold; only the resize is timed (`time.thread_time`). Both must give the same bytes.
Per input class: milliseconds per image of each (median of the rounds, and the rounds), and the
median of the per-round ratios this/REF.

With ``--base numpy``, the other side is this tree's own NumPy path (the compiled pass,
``edgeclass/media/_resample.c``, switched off for it alone): what the compiled pass saves.
With ``--base pillow``, the other side is Pillow's own C resampler (``Image.resize`` with the
crop's ``box``: the same outputs, computed in fixed point by scalar C; ``Image.fromarray`` counted):
what compiling the same arithmetic without SIMD would give. Its box centres are computed from
the box, not the output index, and differ in the last bit on some sizes: up to 1 grey level is
allowed there (Pillow's whole resize + crop equals this tree's bytes: tests/unit check that).

Usage: python benchmarks/resample.py [--base REF|numpy|pillow] [--rounds 5] [--images 100] [--work DIR]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import CLASSES, REPO, class_folder, decode_jobs  # noqa: E402  (benchmarks/ is not a package)


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
    """This tree's resampler with the compiled pass switched off (for this module alone)."""
    import types

    module = load_resample((REPO / "edgeclass/media/resample.py").read_text(), "resample_numpy")
    module.resample_native = types.SimpleNamespace(available=lambda: False)
    return module


def base_module(base: str):
    if base == "pillow":
        return Pillow()
    if base == "numpy":
        return numpy_path()
    return load_resample(base_source(base), "resample_base")


def base_source(ref: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:edgeclass/media/resample.py"],
                          capture_output=True, text=True, check=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="HEAD~1", help="git ref of the resampler to compare with, 'numpy' or 'pillow'")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--images", type=int, default=100, help="images per class (at most the class's set)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgeclass-bench")
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
          f"(medians of {args.rounds} rounds); this tree against {args.base}")
    for name in CLASSES:
        folder = class_folder(args.work, name)
        times = compare(modules, decode_jobs(folder, args.images), args.rounds, rng, int(args.base == "pillow"))
        ratios = [a / b for a, b in zip(times["this"], times[args.base])]
        print(f"  {name:<12}  this {statistics.median(times['this']):.3f}  {args.base} "
              f"{statistics.median(times[args.base]):.3f}  ratio {statistics.median(ratios):.3f} "
              f"(rounds {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
