#!/usr/bin/env python
"""`edgeclass compare OLD NEW` against two separate `edgeclass run`s on the same JPEGs.

compare reads and decodes each image once and feeds the crop to both models; two runs decode
every image twice. On generated 1080p JPEGs (and ~256 px ones), in one run of this script:

* "two runs": wall time of `run --model OLD` then `run --model NEW` (process start and a
  cache-warm compile included, as a cron job pays them);
* "compare": wall time of `compare OLD NEW INPUTS` (no --report: its thumbnails are extra work);

and the speed-up, two runs / compare, per precision. Also the CPU time (user + sys) of each,
which says where the time goes on a busy box.

Per image, start-up aside, two runs cost two decodes and two inferences and compare one decode
and two: the script measures the CPU time of run's decode + crop (D) and of one inference (I)
and prints the bound 2 (D + I) / (D + 2 I) that decoding once can reach.

Usage: python benchmarks/compare.py [--arch mobilevitv2_075] [--images 200] [--work DIR]
       [--precision int8 --precision fp32] [--models OLD NEW]
Without --models, builds a random-weight model of ARCH (FP32 + INT8; needs the convert extra)
and compares it with a copy of itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import make_model  # noqa: E402  (same folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def make_jpegs(folder: Path, n: int, size: tuple[int, int], seed: int) -> Path:
    """``n`` distinct JPEGs of ``size`` (height, width) made from generated pictures."""
    import cv2
    import numpy as np
    import train_test_model

    if folder.exists() and len(list(folder.glob("*.jpg"))) >= n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = [train_test_model.make_image(i % 4, rng, size) for i in range(min(n, 16))]
    for i in range(n):
        img = cv2.cvtColor(np.roll(base[i % len(base)], i, axis=1), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f"img{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def timed(*args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one edgeclass command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "edgeclass", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 5):
        raise RuntimeError(proc.stderr.read().decode())
    return wall, usage.ru_utime + usage.ru_stime


def measure(old: Path, new: Path, folder: Path, precision: str, cache: Path, work: Path) -> dict:
    common = ["--precision", precision, "--cache-dir", cache]
    timed("run", folder, "--model", old, "-o", work / "warm.csv", "-q", *common)  # fill the compile cache
    timed("run", folder, "--model", new, "-o", work / "warm.csv", "-q", *common)
    a = timed("run", folder, "--model", old, "-o", work / "old.csv", "-q", *common)
    b = timed("run", folder, "--model", new, "-o", work / "new.csv", "-q", *common)
    c = timed("compare", old, new, folder, *common)
    return {"runs_wall": a[0] + b[0], "runs_cpu": a[1] + b[1], "compare_wall": c[0], "compare_cpu": c[1]}


def per_image_cpu(model: Path, folder: Path, precision: str) -> tuple[float, float]:
    """CPU milliseconds per image of run's decode + crop (one thread) and of one inference
    (the process's CPU time over a pool of requests), in this process."""
    from edgeclass.engine import Classifier, EngineOptions, RequestPool
    from edgeclass.media.decode import DecodeOptions, load_image_tensor
    from edgeclass.media.workers import prepare_decode_workers
    from edgeclass.modelfiles.folder import ModelDir

    files = sorted(folder.glob("*.jpg"))
    prepare_decode_workers(None)  # as run does
    with Classifier(ModelDir(model), EngineOptions(precision=precision)) as clf:
        t0 = time.process_time()
        crops = [load_image_tensor(f, clf.metadata.preprocess, DecodeOptions()) for f in files]
        decode = (time.process_time() - t0) / len(files)
        pool = RequestPool(clf.compiled)
        for crop in crops[:8]:  # warm up
            pool.submit(crop[None], 0)
        pool.drain()
        t0 = time.process_time()
        for crop in crops:
            pool.submit(crop[None], 0)
        pool.drain()
        infer = (time.process_time() - t0) / len(files)
    return decode * 1000, infer * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="mobilevitv2_075")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeclass-bench-compare"))
    ap.add_argument("--precision", action="append", choices=["int8", "fp32"])
    ap.add_argument("--models", type=Path, nargs=2, metavar=("OLD", "NEW"), help="Existing model folders instead.")
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    if args.models:
        old, new = args.models
    else:
        calib = make_jpegs(work / "calib", 100, (256, 320), seed=1)
        (work / "old").mkdir(exist_ok=True)
        old = make_model(work / "old", args.arch, calib)
        new = work / "new" / "models" / args.arch
        if not new.exists():  # the same network under another folder: speed does not depend on the weights
            shutil.copytree(old, new)
    cache = work / "ov_cache"
    folders = {"1080p": make_jpegs(work / "1080p", args.images, (1080, 1920), seed=2),
               "256px": make_jpegs(work / "small", args.images, (256, 320), seed=3)}
    print(f"{old} vs {new}, {args.images} images, {len(os.sched_getaffinity(0))} cores")
    print(f"{'images':8} {'precision':9} {'two runs s':>10} {'compare s':>10} {'speed-up':>9} "
          f"{'runs CPU s':>11} {'compare CPU s':>14} {'CPU ratio':>9} {'decode ms':>9} {'infer ms':>9} {'bound':>6}")
    for name, folder in folders.items():
        for precision in args.precision or ["int8", "fp32"]:
            if precision == "int8" and not (Path(old) / "model_int8.xml").exists():
                continue
            m = measure(old, new, folder, precision, cache, work)
            d, i = per_image_cpu(old, folder, precision)
            bound = 2 * (d + i) / (d + 2 * i)  # per image, start-up aside: two decodes + two inferences vs one + two
            print(f"{name:8} {precision:9} {m['runs_wall']:10.2f} {m['compare_wall']:10.2f} "
                  f"{m['runs_wall'] / m['compare_wall']:8.2f}x {m['runs_cpu']:11.2f} {m['compare_cpu']:14.2f} "
                  f"{m['runs_cpu'] / m['compare_cpu']:8.2f}x {d:9.2f} {i:9.2f} {bound:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
