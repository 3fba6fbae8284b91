#!/usr/bin/env python
"""What the decode threads and OpenVINO's inference threads cost each other on this box.

`edgeclass run`'s limit (benchmarks/throughput.py) adds single-thread decoding and
benchmark_app as if they did not disturb each other. This script measures how far that holds,
in one process and one moment (the host's speed drifts by ±10 % between runs, so figures taken at
different times cannot be compared): OpenVINO's infer requests are kept full from the main
thread (one prepared input, no decoding), while two background threads do one image's work at
the rate `run` would (``--rate`` images/s together, sleeping between images as the pipeline's
workers do), for each kind of work in turn:

* none: inference alone;
* decode: `decode_bgr` (what the limit counts);
* decode+resample: `decode_bgr` + `prepare_array` (what `run`'s workers do per image).

Printed per kind, medians of ``--repeat`` rounds: inferences/s, OpenVINO's CPU per inference
(process CPU minus the main and background threads' own), and the background work's CPU per
image under contention against the same work on this thread with nothing else running.

Usage: python benchmarks/contention.py MODEL_DIR IMAGES_DIR [--precision int8] [--seconds 6]
       [--rate 140] [--repeat 2]
(e.g. the model and the small JPEGs benchmarks/throughput.py made under its --work folder)
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

import cv2

from edgeclass.engine import Classifier, EngineOptions, RequestPool
from edgeclass.media.decode import DecodeOptions, decode_bgr, prepare_array
from edgeclass.media.workers import prepare_decode_workers
from edgeclass.modelfiles.folder import ModelDir


def kinds(pp):
    opt = DecodeOptions()
    return {"none": None,
            "decode": lambda data: decode_bgr(data, pp, opt),
            "decode+resample": lambda data: prepare_array(decode_bgr(data, pp, opt), pp)}


def alone(work, datas: list[bytes]) -> float:
    """CPU ms per image of ``work`` on this thread, nothing else running."""
    t = time.thread_time()
    for data in datas:
        work(data)
    return (time.thread_time() - t) / len(datas) * 1e3


def contended(classifier, x, work, datas: list[bytes], seconds: float, rate: float) -> tuple[float, float, float]:
    """(inferences/s, OpenVINO CPU ms per inference, background CPU ms per image)."""
    stop, spent = threading.Event(), []

    def background(offset: int) -> None:
        i, count, cpu0, due = offset, 0, time.thread_time(), time.perf_counter()
        while not stop.is_set():
            work(datas[i % len(datas)])
            i, count = i + 2, count + 1
            due += 2.0 / rate
            time.sleep(max(0.0, due - time.perf_counter()))
        spent.append((time.thread_time() - cpu0, count))

    pool = RequestPool(classifier.compiled, 4)
    threads = [threading.Thread(target=background, args=(o,)) for o in (0, 1)] if work else []
    for t in threads:
        t.start()
    cpu0, main0, wall0, n = time.process_time(), time.thread_time(), time.perf_counter(), 0
    while time.perf_counter() - wall0 < seconds:
        pool.submit(x, None)
        n += 1
    pool.drain()
    wall, main = time.perf_counter() - wall0, time.thread_time() - main0
    stop.set()
    for t in threads:
        t.join()
    bg_cpu, bg_images = sum(c for c, _ in spent), sum(k for _, k in spent)
    openvino = time.process_time() - cpu0 - main - bg_cpu
    return n / wall, openvino / n * 1e3, (bg_cpu / bg_images * 1e3 if bg_images else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("images", type=Path)
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rate", type=float, default=140.0, help="images/s the two background threads do together")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    prepare_decode_workers(None)  # as `run` prepares its workers
    files = sorted(p for p in args.images.iterdir() if p.is_file())[:300]
    datas = [p.read_bytes() for p in files]
    with Classifier(ModelDir(args.model), EngineOptions(precision=args.precision)) as classifier:
        pp = classifier.metadata.preprocess
        x = prepare_array(cv2.imread(str(files[0])), pp)[None]
        rows: dict[str, list] = {}
        for _ in range(args.repeat):  # kinds interleaved: each round sees the same host
            for name, work in kinds(pp).items():
                solo = alone(work, datas) if work else 0.0
                rows.setdefault(name, []).append((*contended(classifier, x, work, datas, args.seconds, args.rate), solo))
    print(f"{args.model.name} {args.precision}, {len(datas)} images from {args.images}, background {args.rate:g} img/s; "
          f"medians of {args.repeat} rounds")
    print(f"  {'work beside inference':22s} {'inf/s':>7s} {'OpenVINO ms/inf':>16s} {'work ms/img':>12s} {'alone':>7s}")
    for name, runs in rows.items():
        rate, ov, bg, solo = (statistics.median(r[i] for r in runs) for i in range(4))
        work = f"{bg:12.2f} {solo:7.2f}" if name != "none" else f"{'-':>12s} {'-':>7s}"
        print(f"  {name:22s} {rate:7.1f} {ov:16.2f} {work}")


if __name__ == "__main__":
    main()
