#!/usr/bin/env python
"""`edgeclass run` against this box's own limit, per input class and precision, in one run.

The limit for a class of inputs is what the box could do if decoding and inference were the
only work: C cores shared by single-thread decoding (at the scale `run` decodes at) and
OpenVINO's benchmark_app (inference only, THROUGHPUT hint):

    limit = C / (C / benchmark_app_fps + 1 / decode_rate_one_thread)

(the last column, `run/limit+resize`, counts the exact resize and crop too: decode_rate replaced by
the one-thread rate of decode + resize; it says how much of the gap is the resize.)

Every `run` figure is printed as a ratio against that limit (goal: >= 0.9), the median of
several rounds, with its range over the rounds. The host's speed drifts over minutes, so each
`run` is bracketed: its decode rate is measured just before it, and its benchmark_app rate is the
mean of a short benchmark_app run just before and one just after it (same precision). Also printed:
start-up of a one-image `run` (wall and CPU seconds, medians of 5) against a minimal OpenVINO
script doing the same job (import openvino, cv2, numpy; compile from the cache; one inference;
goal: <= 1.3x), and optionally peak memory on 1,000 vs 10,000 images (--rss).

Input classes: small JPEGs (256-350 px, random sizes), 1080p JPEGs, 12 MP JPEGs, PNGs (800x600).
Precisions: int8, and bf16 where the CPU has it (AVX512_BF16/AMX).
The model: mobilevitv2_075 with random weights (speed does not depend on them), made once.

Usage: python -m benchmarks.throughput [--model mobilevitv2_075] [--work DIR] [--quick] [--repeat N] [--rss]
Needs the convert extra (torch, timm) the first time, to make the model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2

from benchmarks._common import CLASSES, REPO, class_folder, cpu_name, decode_jobs, make_images, make_model, sh


def edgeclass_run(model: Path, folder: Path, precision: str, work: Path) -> float:
    summary = work / "summary.json"
    r = sh(sys.executable, "-m", "edgeclass", "run", folder, "--model", model, "--precision", precision, "-o",
           work / "out.csv", "--summary-json", summary, "-q")
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(summary.read_text())["images_per_s"]


def benchmark_app(xml: Path, seconds: int, precision: str) -> float:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    args = [exe, "-m", xml, "-d", "CPU", "-hint", "throughput", "-t", seconds, "-shape", "[1,256,256,3]"]
    if precision in ("fp32", "bf16"):
        args += ["-infer_precision", {"fp32": "f32", "bf16": "bf16"}[precision]]
    r = sh(*args)
    m = re.search(r"Throughput:\s*([\d.]+)\s*FPS", r.stdout)
    if not m:
        raise RuntimeError(r.stdout[-2000:] + r.stderr[-2000:])
    return float(m.group(1))


def decode_rates(folder: Path, n: int) -> tuple[float, float]:
    """Images/s on one thread: decoded, each at the scale `run` decodes it at (JPEG DCT scaling);
    and decoded + resized and cropped as `run` does (the exact resampler)."""
    from edgeclass.media.preprocess import PreprocessConfig, resize_and_crop

    config = PreprocessConfig()
    jobs = decode_jobs(folder, n)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    for buf, flag in jobs[:5]:  # warm-up: the decoder's and the resampler's first calls
        resize_and_crop(cv2.imdecode(buf, flag), config)
    t0 = time.perf_counter()
    for buf, flag in jobs:
        cv2.imdecode(buf, flag)
    t1 = time.perf_counter()
    for buf, flag in jobs:
        resize_and_crop(cv2.imdecode(buf, flag), config)
    t2 = time.perf_counter()
    cv2.setNumThreads(threads)
    return len(jobs) / (t1 - t0), len(jobs) / (t2 - t1)


MINIMAL = """
import sys
import cv2, numpy as np, openvino as ov
core = ov.Core()
model = core.read_model(sys.argv[1])
model.reshape([1, 256, 256, 3])
compiled = core.compile_model(model, "CPU", {"CACHE_DIR": sys.argv[3]})
img = cv2.imread(sys.argv[2])
x = cv2.resize(img[:256, :256], (256, 256))[None]
print(int(np.argmax(compiled(x)[0])))
"""


def process_times(args: list[str], runs: int = 5) -> tuple[float, float]:
    """Median wall and CPU (user + sys) seconds of a whole process, after one warm-up run."""
    walls, cpus = [], []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
        if i:
            walls.append(time.perf_counter() - t0)
            cpus.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def startup(model: Path, image: Path, work: Path) -> dict:
    cache = work / "ov_cache"
    # edgeclass's bytecode, as a regular `pip install` writes it (an editable install under
    # PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module at every start)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "edgeclass")], check=True)
    script = work / "minimal.py"
    script.write_text(MINIMAL)
    mini = process_times([sys.executable, str(script), str(model / "model_int8.xml"), str(image), str(cache)])
    run = process_times([sys.executable, "-m", "edgeclass", "run", str(image), "--model", str(model),
                         "--cache-dir", str(cache), "-o", str(work / "one.csv"), "-q"])
    return {"minimal_wall_s": mini[0], "minimal_cpu_s": mini[1], "run_wall_s": run[0], "run_cpu_s": run[1]}


def peak_rss_mb(model: Path, folder: Path, work: Path) -> float:
    proc = subprocess.Popen([sys.executable, "-m", "edgeclass", "run", str(folder), "--model", str(model), "-o",
                             str(work / "rss.csv"), "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024.0


def has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def measure(args) -> dict:
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    folders = {name: class_folder(work, name, args.quick) for name in CLASSES}
    model = make_model(work, args.model, folders["small JPEG"])
    # glibc keeps freed memory, as in `run` (edgeclass/media/workers.py): otherwise a decoded
    # photo's buffer may be a fresh mapping each time (1080p: ~850 page faults per image, a third
    # slower), depending on what the process freed before, and the limit would move with it
    from edgeclass.media.workers import keep_freed_memory

    keep_freed_memory()
    cores = len(os.sched_getaffinity(0))
    precisions = ["int8"] + (["bf16"] if has_bf16() else [])
    seconds = 4 if args.quick else 6
    repeat = args.repeat or (1 if args.quick else 3)
    res: dict = {"cpu": cpu_name(), "cores": cores, "date": time.strftime("%Y-%m-%d"), "model": args.model,
                 "repeat": repeat, "benchmark_app": {}, "decode": {}, "prepare": {}, "run": {}}
    for r in range(repeat):  # rounds: each figure is the median of its rounds (the host's speed drifts)
        for p in precisions:
            xml = model / ("model_int8.xml" if p == "int8" else "model_fp32.xml")
            print(f"[{r + 1}/{repeat}] {p}: benchmark_app, then each class's decode, run, benchmark_app ...", flush=True)
            before = benchmark_app(xml, seconds, p)
            for name, folder in folders.items():
                key = f"{name}/{p}"
                decode, prepare = decode_rates(folder, 100)
                res["decode"].setdefault(key, []).append(decode)
                res["prepare"].setdefault(key, []).append(prepare)
                res["run"].setdefault(key, []).append(edgeclass_run(model, folder, p, work))
                after = benchmark_app(xml, seconds, p)
                # the limit's inference rate brackets the run: the mean of the measurements just
                # before and just after it (the host's speed drifts over minutes)
                res["benchmark_app"].setdefault(key, []).append((before + after) / 2)
                before = after
    print("start-up ...", flush=True)
    res["startup"] = startup(model, next(iter(sorted(folders["small JPEG"].iterdir()))), work)
    if args.rss:
        many = make_images(work / "rss_10000", 10_000, (240, 320), ".jpg", 9)
        thousand = work / "rss_1000"
        if not thousand.exists():
            thousand.mkdir()
            for f in sorted(many.glob("*.jpg"))[:1000]:
                os.link(f, thousand / f.name)
        res["rss_mb"] = {"1000": peak_rss_mb(model, thousand, work), "10000": peak_rss_mb(model, many, work)}
    return res


def report(res: dict) -> None:
    cores = res["cores"]
    print(f"\n{res['model']} on {res['cpu']}, {cores} cores, {res['date']}; images/s (higher is better)")
    med = statistics.median
    print(f"  medians of {res['repeat']} rounds; run/limit also as the range over the rounds")
    per_precision: dict = {}
    for key, fps in res["benchmark_app"].items():
        per_precision.setdefault(key.split("/")[1], []).extend(fps)
    for p, fps in per_precision.items():
        print(f"  benchmark_app {p} (inference only){'':18} {med(fps):8.1f}   (range {min(fps):.1f}-{max(fps):.1f})")
    print(f"\n  {'input class / precision':28} {'decode 1 thr':>12} {'limit':>8} {'run':>8} {'run/limit':>10} "
          f"{'range':>11} {'run/limit+resize':>17}")
    for key, runs in res["run"].items():
        apps = res["benchmark_app"][key]
        limits = [cores / (cores / app + 1 / decode) for app, decode in zip(apps, res["decode"][key])]
        ratios = [fps / limit for fps, limit in zip(runs, limits)]
        # the same limit with the exact resize counted as well (not the limit: a diagnosis)
        with_resize = [fps * (1 / app + 1 / (cores * prep)) for fps, app, prep in zip(runs, apps, res["prepare"][key])]
        print(f"  {key:28} {med(res['decode'][key]):12.1f} {med(limits):8.1f} {med(runs):8.1f} {med(ratios):10.2f} "
              f"{min(ratios):5.2f}-{max(ratios):.2f} {med(with_resize):17.2f}")
    s = res["startup"]
    print(f"\n  one-image run: {s['run_wall_s']:.2f} s wall, {s['run_cpu_s']:.2f} s CPU; minimal OpenVINO script "
          f"{s['minimal_wall_s']:.2f} s wall, {s['minimal_cpu_s']:.2f} s CPU: "
          f"{s['run_wall_s'] / s['minimal_wall_s']:.2f}x wall (goal <= 1.3x), "
          f"{s['run_cpu_s'] / s['minimal_cpu_s']:.2f}x CPU")
    if "rss_mb" in res:
        r = res["rss_mb"]
        print(f"  peak RSS: 1,000 images {r['1000']:.0f} MB, 10,000 images {r['10000']:.0f} MB, "
              f"ratio {r['10000'] / r['1000']:.3f} (flat: <= 1.10)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilevitv2_075")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeclass-bench"))
    ap.add_argument("--quick", action="store_true", help="smaller sets, shorter benchmark_app runs, one round")
    ap.add_argument("--repeat", type=int, default=0, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--rss", action="store_true", help="also peak memory on 1,000 and 10,000 images")
    args = ap.parse_args()
    res = measure(args)
    report(res)
    (args.work / "results.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
