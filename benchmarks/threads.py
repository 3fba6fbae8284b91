#!/usr/bin/env python
"""Several `edgeclass run` jobs on one box: do they lose throughput to oversubscription?

On the same generated JPEGs, in one run of this script (compare the ratios, not the figures):

A. one `edgeclass run --threads C` over all images (C = the cores this process may use);
B. C concurrent runs with `--threads 1`, each over its share (the cron recipe in the README:
   inference threads, decode workers and OpenCV's pool capped, CPU pinning off);
C. C concurrent runs without `--threads` (each takes every core, OpenVINO pins its threads).

Two figures per case: "wall", images / time from the first start to the last exit (process
start and a cache-warm compile included), and "run", images / the longest run's own duration
from its summary JSON (classification only). Prints B/A and C/A for both.

Usage: python benchmarks/threads.py [--model DIR] [--images 400] [--work DIR] [--repeat 1]
Without --model, builds a random-weight mobilevitv2_050 (needs the convert extra).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import make_images, make_model  # noqa: E402  (same folder)


def start(model: Path, images: list[Path], out: Path, threads: int | None, cache: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "edgeclass", "run", "-", "--model", str(model), "-o", str(out), "-q",
            "--cache-dir", str(cache), "--summary-json", str(out.with_suffix(".json"))]
    if threads:
        args += ["--threads", str(threads)]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc.stdin.write("".join(f"{p}\n" for p in images))
    proc.stdin.close()
    return proc


def concurrent(model: Path, images: list[Path], jobs: int, threads: int | None, work: Path,
               cache: Path) -> tuple[float, float]:
    """(wall, run) images per second of ``jobs`` runs started together over disjoint shares."""
    shares = [images[i::jobs] for i in range(jobs)]
    t0 = time.perf_counter()
    outs = [work / f"out{i}.csv" for i in range(jobs)]
    procs = [start(model, share, out, threads, cache) for share, out in zip(shares, outs)]
    for p in procs:
        err = p.stderr.read()
        if p.wait() != 0:
            raise RuntimeError(err)
    wall = time.perf_counter() - t0
    longest = max(json.loads(out.with_suffix(".json").read_text())["duration_s"] for out in outs)
    return len(images) / wall, len(images) / longest


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
    cases = {"A": (1, cores), "B": (cores, 1), "C": (cores, None)}
    best = {k: (0.0, 0.0) for k in cases}
    for _ in range(args.repeat):
        for k, (jobs, threads) in cases.items():
            wall, run = concurrent(model, images, jobs, threads, work, cache)
            best[k] = (max(best[k][0], wall), max(best[k][1], run))
    names = {"A": f"1 run  --threads {cores}", "B": f"{cores} runs --threads 1 each",
             "C": f"{cores} runs, no --threads"}
    print(f"{len(images)} JPEGs 640x480, {cores} cores, model {model}, best of {args.repeat}")
    print(f"{'':34} {'wall img/s':>10} {'run img/s':>10}  ratios to A (wall, run)")
    for k, name in names.items():
        wall, run = best[k]
        print(f"{k}  {name:31} {wall:10.1f} {run:10.1f}  {wall / best['A'][0]:.2f}, {run / best['A'][1]:.2f}")


if __name__ == "__main__":
    main()
