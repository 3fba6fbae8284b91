#!/usr/bin/env python
"""Several `edgeclass run` jobs on one box: do they lose throughput to oversubscription?

On the same generated JPEGs, in one run of this script (compare the ratios, not the figures):

A. one `edgeclass run --threads C` over all images (C = the cores this process may use);
B. C concurrent runs with `--threads 1`, each over its share (the cron recipe in the README:
   inference threads, decode workers and OpenCV's pool capped, CPU pinning off);
C. C concurrent runs without `--threads` (each takes every core, OpenVINO pins its threads).

Throughput is images / wall time from the first start to the last exit (compile included: the
compiled-model cache is warmed first). Prints B/A and C/A.

Usage: python benchmarks/threads.py [--model DIR] [--images 400] [--work DIR] [--repeat 1]
Without --model, builds a random-weight mobilevitv2_050 (needs the convert extra).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import make_images, make_model  # noqa: E402  (same folder)


def start(model: Path, images: list[Path], out: Path, threads: int | None, cache: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "edgeclass", "run", "-", "--model", str(model), "-o", str(out), "-q",
            "--cache-dir", str(cache)]
    if threads:
        args += ["--threads", str(threads)]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc.stdin.write("".join(f"{p}\n" for p in images))
    proc.stdin.close()
    return proc


def concurrent(model: Path, images: list[Path], jobs: int, threads: int | None, work: Path, cache: Path) -> float:
    """Images per second of ``jobs`` runs started together over disjoint shares of ``images``."""
    shares = [images[i::jobs] for i in range(jobs)]
    t0 = time.perf_counter()
    procs = [start(model, share, work / f"out{i}.csv", threads, cache) for i, share in enumerate(shares)]
    for p in procs:
        err = p.stderr.read()
        if p.wait() != 0:
            raise RuntimeError(err)
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, help="model folder (default: build a random-weight mobilevitv2_050)")
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeclass-threads"))
    ap.add_argument("--repeat", type=int, default=1, help="alternate A, B, C this many times; best of each")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    folder = make_images(work / "images", args.images, (480, 640), seed=7)
    images = sorted(folder.glob("*.jpg"))[: args.images]
    model = args.model or make_model(work, "mobilevitv2_050", folder)
    cache = work / "ov_cache"
    concurrent(model, images[:8], 1, None, work, cache)  # warm the compiled-model cache
    concurrent(model, images[:8], 1, 1, work, cache)
    best = {"A": 0.0, "B": 0.0, "C": 0.0}
    for _ in range(args.repeat):
        best["A"] = max(best["A"], concurrent(model, images, 1, cores, work, cache))
        best["B"] = max(best["B"], concurrent(model, images, cores, 1, work, cache))
        best["C"] = max(best["C"], concurrent(model, images, cores, None, work, cache))
    print(f"{len(images)} JPEGs 640x480, {cores} cores, model {model}")
    print(f"A  1 run  --threads {cores}:              {best['A']:7.1f} img/s")
    print(f"B  {cores} runs --threads 1 each:           {best['B']:7.1f} img/s   B/A = {best['B'] / best['A']:.2f}")
    print(f"C  {cores} runs, no --threads (pinned):     {best['C']:7.1f} img/s   C/A = {best['C'] / best['A']:.2f}")


if __name__ == "__main__":
    main()
