#!/usr/bin/env python
"""End-to-end throughput of `edgeclass run` against the alternatives, in one run, same machine.

Makes (or reuses) a mobilevitv2 IR pair (random weights: speed does not depend on them) and
two generated JPEG folders (~256 px and 1080p), then measures:

1. `edgeclass run` end to end (int8 and fp32), decode included;
2. OpenVINO's benchmark_app on the same IRs (inference only: the upper bound);
3. the tutorial loop: PIL open + timm-style resize/crop, compiled model called per image;
4. PyTorch eager timm model with timm's transform (the "no OpenVINO" baseline);
5. single-thread JPEG decode rate at the largest DCT scale that keeps the short side >= the
   resize target, and the machine limit C / (C / benchmark_app_fps + 1 / decode_rate);
6. peak RSS of `edgeclass run` on 1,000 and 10,000 images.

Usage: python benchmarks/throughput.py [--model mobilevitv2_075] [--work DIR] [--quick]
Needs the convert extra (torch, timm) for the model and the PyTorch baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def sh(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def make_images(folder: Path, n: int, size: tuple[int, int], seed: int) -> Path:
    import train_test_model

    if folder.exists() and len(list(folder.glob("*.jpg"))) >= n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = [train_test_model.make_image(i % 4, rng, size) for i in range(min(n, 16))]
    for i in range(n):
        img = np.roll(base[i % len(base)], i, axis=1)  # distinct files, realistic content
        cv2.imwrite(str(folder / f"img{i:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def make_model(work: Path, arch: str, calib: Path) -> Path:
    out = work / "models" / arch
    if (out / "model_int8.xml").exists():
        return out
    import timm
    import torch

    from edgeclass.model.convert import ConvertOptions, convert
    from edgeclass.model.quantize import QuantizeOptions

    ckpt = work / f"{arch}.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model(arch).state_dict(), ckpt)
    convert(ConvertOptions(model=arch, weights=ckpt, output=out, calibration=calib,
                           quantize=QuantizeOptions(subset_size=100, max_drop=1.0, fast_bias_correction=True)))
    return out


def edgeclass_run(model: Path, folder: Path, precision: str, work: Path) -> dict:
    summary = work / "summary.json"
    r = sh(sys.executable, "-m", "edgeclass", "run", folder, "--model", model, "--precision", precision, "-o",
           work / "out.csv", "--summary-json", summary, "-q")
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(summary.read_text())


def peak_rss_mb(model: Path, folder: Path, work: Path) -> tuple[float, float]:
    proc = subprocess.Popen([sys.executable, "-m", "edgeclass", "run", str(folder), "--model", str(model), "-o",
                             str(work / "rss.csv"), "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.perf_counter()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024.0, time.perf_counter() - t0


def benchmark_app(xml: Path, seconds: int, f32: bool, shape: str) -> float:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    args = [exe, "-m", xml, "-d", "CPU", "-hint", "throughput", "-t", seconds, "-shape", shape]
    if f32:
        args += ["-infer_precision", "f32"]
    r = sh(*args)
    m = re.search(r"Throughput:\s*([\d.]+)\s*FPS", r.stdout)
    if not m:
        raise RuntimeError(r.stdout[-2000:] + r.stderr[-2000:])
    return float(m.group(1))


def tutorial_loop(xml: Path, folder: Path, n: int) -> float:
    """What the OpenVINO tutorials show: PIL + numpy preprocessing, one image at a time."""
    import openvino as ov
    from PIL import Image

    compiled = ov.Core().compile_model(str(xml), "CPU")
    files = sorted(folder.glob("*.jpg"))[:n]
    t0 = time.perf_counter()
    for f in files:
        img = Image.open(f).convert("RGB")
        w, h = img.size
        s = 288 / min(w, h)
        img = img.resize((round(w * s), round(h * s)), Image.BICUBIC)
        w, h = img.size
        left, top = (w - 256) // 2, (h - 256) // 2
        x = np.asarray(img.crop((left, top, left + 256, top + 256)))[None]
        compiled(x)[0].argmax()
    return len(files) / (time.perf_counter() - t0)


def torch_eager(arch: str, folder: Path, n: int) -> float:
    import timm
    import timm.data
    import torch
    from PIL import Image

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    model = timm.create_model(arch).eval()
    tf = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    files = sorted(folder.glob("*.jpg"))[:n]
    with torch.no_grad():
        model(tf(Image.open(files[0]).convert("RGB"))[None])
        t0 = time.perf_counter()
        for f in files:
            model(tf(Image.open(f).convert("RGB"))[None]).argmax()
    return len(files) / (time.perf_counter() - t0)


def decode_rate(folder: Path, n: int) -> tuple[float, int]:
    from edgeclass.media.imageheader import read_header
    from edgeclass.media.preprocess import PreprocessConfig, reduction_factor

    files = sorted(folder.glob("*.jpg"))[:n]
    data = [f.read_bytes() for f in files]
    h = read_header(data[0])
    factor = reduction_factor(h.height, h.width, PreprocessConfig())
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}[factor]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    for d in data:
        cv2.imdecode(np.frombuffer(d, np.uint8), flag)
    rate = len(data) / (time.perf_counter() - t0)
    cv2.setNumThreads(threads)
    return rate, factor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilevitv2_075")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeclass-bench"))
    ap.add_argument("--quick", action="store_true", help="smaller sets, skip the 10,000-image RSS run")
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    n_small, n_big = (200, 60) if args.quick else (600, 200)
    small = make_images(work / "img256", n_small, (256, 256), 1)
    big = make_images(work / "img1080p", n_big, (1080, 1920), 2)
    model = make_model(work, args.model, small)
    cores = len(os.sched_getaffinity(0))
    bt = 8 if args.quick else 15
    shape = "[1,256,256,3]"
    res = {}
    print("benchmark_app ...", flush=True)
    res["ba_int8"] = benchmark_app(model / "model_int8.xml", bt, False, shape)
    res["ba_fp32"] = benchmark_app(model / "model_fp32.xml", bt, True, shape)
    print("edgeclass run ...", flush=True)
    for name, folder in (("256", small), ("1080p", big)):
        for prec in ("int8", "fp32"):
            res[f"run_{prec}_{name}"] = edgeclass_run(model, folder, prec, work)["images_per_s"]
    print("baselines ...", flush=True)
    res["tutorial_256"] = tutorial_loop(model / "model_int8.xml", small, min(n_small, 150))
    res["tutorial_1080p"] = tutorial_loop(model / "model_int8.xml", big, min(n_big, 60))
    res["torch_256"] = torch_eager(args.model, small, 60)
    res["torch_1080p"] = torch_eager(args.model, big, 40)
    res["decode_1080p"], factor = decode_rate(big, min(n_big, 100))
    limit = cores / (cores / res["ba_int8"] + 1 / res["decode_1080p"])

    print(f"\n{args.model}, {cores} cores, images/s (higher is better)")
    rows = [
        ("benchmark_app int8 (inference only)", res["ba_int8"], None),
        ("benchmark_app fp32 (inference only)", res["ba_fp32"], None),
        ("edgeclass run int8, 256px JPEGs", res["run_int8_256"], res["run_int8_256"] / res["ba_int8"]),
        ("edgeclass run fp32, 256px JPEGs", res["run_fp32_256"], res["run_fp32_256"] / res["ba_fp32"]),
        ("tutorial loop int8, 256px", res["tutorial_256"], None),
        ("PyTorch eager, 256px", res["torch_256"], None),
        (f"1080p decode, 1 thread, 1/{factor} scale", res["decode_1080p"], None),
        ("machine limit 1080p int8", limit, None),
        ("edgeclass run int8, 1080p JPEGs", res["run_int8_1080p"], res["run_int8_1080p"] / limit),
        ("edgeclass run fp32, 1080p JPEGs", res["run_fp32_1080p"], None),
        ("tutorial loop int8, 1080p", res["tutorial_1080p"], None),
        ("PyTorch eager, 1080p", res["torch_1080p"], None),
    ]
    for label, value, ratio in rows:
        extra = f"  ({ratio:.2f} of its bound)" if ratio is not None else ""
        print(f"  {label:42} {value:8.1f}{extra}")
    print(f"\n  targets: 256px run/benchmark_app int8 = {res['run_int8_256'] / res['ba_int8']:.2f} (>= 0.9); "
          f"1080p run/limit = {res['run_int8_1080p'] / limit:.2f} (>= 0.8)")
    print(f"  1080p: edgeclass vs tutorial loop {res['run_int8_1080p'] / res['tutorial_1080p']:.2f}x, "
          f"vs PyTorch {res['run_int8_1080p'] / res['torch_1080p']:.2f}x; int8/fp32 benchmark_app "
          f"{res['ba_int8'] / res['ba_fp32']:.2f}x")
    if not args.quick:
        many = make_images(work / "img10k", 10_000, (240, 320), 3)
        thousand = work / "img1k"
        if not thousand.exists():
            thousand.mkdir()
            for f in sorted(many.glob("*.jpg"))[:1000]:
                os.link(f, thousand / f.name)
        rss1, t1 = peak_rss_mb(model, thousand, work)
        rss10, t10 = peak_rss_mb(model, many, work)
        print(f"  peak RSS: 1,000 images {rss1:.0f} MB ({t1:.0f}s), 10,000 images {rss10:.0f} MB ({t10:.0f}s), "
              f"ratio {rss10 / rss1:.3f} (<= 1.10)")
    (work / "results.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
