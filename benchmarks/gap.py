#!/usr/bin/env python
"""Where `edgeclass run`'s CPU goes per image, against the limit of benchmarks/throughput.py.

throughput.py's limit for a class of inputs counts two costs per image: single-thread decoding
at the scale `run` decodes at (``cv2.imdecode``) and OpenVINO's inference (benchmark_app,
THROUGHPUT: ``cores / fps`` CPU seconds per image, all cores busy). `run` does more: it reads the
file, resizes and crops exactly (timm's transform), and feeds and collects infer requests. This
script says how much each of those costs, in one moment of the host:

* `run` over the class in this process, through the library as the CLI calls it (warm: the model
  compiled and one run made first); the decode workers' three steps (``read_bytes``,
  ``decode_bgr``, ``prepare_array`` of ``edgeclass.media.decode``) timed on each worker's own
  thread clock; the process's CPU per image from ``getrusage``. What is not a worker step is
  counted as inference and feeding (OpenVINO's threads, the main thread, writing rows).
* beside it, the limit's own figures: decoding (and, for the resize line, decode + resize) on
  one thread with nothing else running (throughput.decode_rates), and benchmark_app's CPU per image (the mean of a short
  benchmark_app run just before and one just after).

Printed per stage: CPU ms per image in `run`, in the limit, the excess; the run/limit ratio; and
the ratio `run` would reach if a stage's excess were zero (its share of the gap). Medians of
``--repeat`` rounds.

Usage: python benchmarks/gap.py [--class "1080p JPEG"] [--precision int8] [--work DIR] [--repeat 3]
(the images and the model are benchmarks/throughput.py's, made under the same --work folder)
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import threading
import time
from pathlib import Path

import throughput  # benchmarks/throughput.py: the images, the model, benchmark_app, the decode jobs
from edgeclass.engine import Classifier, EngineOptions
from edgeclass.media import decode
from edgeclass.media.workers import prepare_decode_workers
from edgeclass.modelfiles.folder import ModelDir
from edgeclass.run.runner import RunOptions, run
from edgeclass.run.stopping import StopState

STEPS = {"read_bytes": "read file", "decode_bgr": "decode", "prepare_array": "resize + crop"}


class StepClock:
    """Thread CPU seconds spent in decode's worker steps (module attributes wrapped: the worker
    looks them up at each call)."""

    def __init__(self):
        self.seconds = dict.fromkeys(STEPS, 0.0)
        self.lock = threading.Lock()
        for name in STEPS:
            setattr(decode, name, self._timed(name, getattr(decode, name)))

    def _timed(self, name, fn):
        def timed(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - t0
                with self.lock:
                    self.seconds[name] += spent
        return timed

    def reset(self) -> None:
        self.seconds = dict.fromkeys(STEPS, 0.0)


def process_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def in_run(classifier: Classifier, folder: Path, out: Path, clock: StepClock) -> dict:
    """CPU ms per image of each worker step and of everything else, in one warm `run`."""
    clock.reset()
    cpu0 = process_cpu()
    summary = run(classifier, RunOptions(inputs=(str(folder),), output=out), StopState())
    total, n = process_cpu() - cpu0, summary.counts.total
    per = {STEPS[k]: v / n * 1e3 for k, v in clock.seconds.items()}
    per["inference + feeding"] = total / n * 1e3 - sum(per.values())
    return {"per_image": per, "images_per_s": summary.images_per_s}


def alone(folder: Path, n: int) -> tuple[float, float]:
    """Single-thread ms per image, nothing else running, as throughput.py's limit counts them:
    decode, and the resize + crop after it."""
    decode_rate, prepare_rate = throughput.decode_rates(folder, n)
    return 1e3 / decode_rate, 1e3 / prepare_rate - 1e3 / decode_rate


def one_round(classifier, xml: Path, folder: Path, args, clock: StepClock) -> dict:
    cores = len(os.sched_getaffinity(0))
    before = throughput.benchmark_app(xml, args.seconds, args.precision)
    decode_ms, resize_ms = alone(folder, 100)
    measured = in_run(classifier, folder, args.work / "gap.csv", clock)
    after = throughput.benchmark_app(xml, args.seconds, args.precision)
    inference_ms = cores / ((before + after) / 2) * 1e3
    limit = {"read file": 0.0, "decode": decode_ms, "resize + crop": 0.0, "inference + feeding": inference_ms}
    return {"run": measured["per_image"], "limit": limit, "resize_alone": resize_ms, "cores": cores,
            "images_per_s": measured["images_per_s"]}


def report(rounds: list[dict], name: str, precision: str) -> None:
    med = statistics.median
    stages = list(rounds[0]["run"])
    run_ms = {s: med(r["run"][s] for r in rounds) for s in stages}
    limit_ms = {s: med(r["limit"][s] for r in rounds) for s in stages}
    total_run, total_limit = sum(run_ms.values()), sum(limit_ms.values())
    print(f"\n{name} / {precision}: CPU ms per image, medians of {len(rounds)} rounds "
          f"(run {med(r['images_per_s'] for r in rounds):.1f} images/s)")
    print(f"  {'stage':24} {'in run':>8} {'limit':>8} {'excess':>8} {'run/limit without it':>22}")
    for s in stages:
        excess = run_ms[s] - limit_ms[s]
        print(f"  {s:24} {run_ms[s]:8.2f} {limit_ms[s]:8.2f} {excess:+8.2f} {total_limit / (total_run - excess):22.2f}")
    print(f"  {'total':24} {total_run:8.2f} {total_limit:8.2f} {total_run - total_limit:+8.2f}")
    busy = med(r["images_per_s"] * sum(r["run"].values()) / 1e3 / r["cores"] for r in rounds)
    print(f"  run/limit in CPU per image: {total_limit / total_run:.2f} (the cores {busy:.0%} busy in run: "
          f"throughput.py's images/s ratio is this times the busy share)")
    print(f"  the resize alone on one thread after each decode: {med(r['resize_alone'] for r in rounds):.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--class", dest="klass", default="1080p JPEG", choices=list(throughput.CLASSES))
    ap.add_argument("--precision", default="int8", choices=["int8", "bf16", "fp32"])
    ap.add_argument("--model", default="mobilevitv2_075")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeclass-bench"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=6, help="each benchmark_app run")
    args = ap.parse_args()
    folder = throughput.class_folder(args.work, args.klass)
    model = throughput.make_model(args.work, args.model, throughput.class_folder(args.work, "small JPEG"))
    xml = model / ("model_int8.xml" if args.precision == "int8" else "model_fp32.xml")
    prepare_decode_workers(None)  # as `run` does (the allocator keeps freed memory)
    clock = StepClock()
    print(f"{args.model} on {throughput.cpu_name()}", flush=True)
    with Classifier(ModelDir(model), EngineOptions(precision=args.precision)) as classifier:
        in_run(classifier, folder, args.work / "gap.csv", clock)  # warm-up
        rounds = [one_round(classifier, xml, folder, args, clock) for _ in range(args.repeat)]
    report(rounds, args.klass, args.precision)


if __name__ == "__main__":
    main()
