#!/usr/bin/env python
"""Cold vs warm start of `edgeclass run` (compiled-model cache), as a cron job sees it.

Times the whole command on one image, three ways: no cache, empty cache (cold: compiles and
writes the cache), filled cache (warm: imports the compiled blob).

Usage: python -m benchmarks.startup MODEL_DIR [--precision int8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "edgeclass", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        img = Path(tmp) / "one.jpg"
        cv2.imwrite(str(img), np.full((480, 640, 3), 128, np.uint8))
        base = ["run", str(img), "--model", str(args.model_dir), "--precision", args.precision, "-q"]
        nocache, cold, warm = [], [], []
        for i in range(args.repeat):
            cache = Path(tmp) / f"cache{i}"
            nocache.append(timed(base + ["--no-cache"]))
            cold.append(timed(base + ["--cache-dir", str(cache)]))
            warm.append(timed(base + ["--cache-dir", str(cache)]))
    med = statistics.median
    print(f"edgeclass run, one image, {args.precision}, median of {args.repeat} (whole process, seconds):")
    print(f"  no cache   {med(nocache):.2f}")
    print(f"  cold cache {med(cold):.2f}  (compiles, writes the cache)")
    print(f"  warm cache {med(warm):.2f}  ({med(nocache) / med(warm):.2f}x faster start than no cache)")


if __name__ == "__main__":
    main()
