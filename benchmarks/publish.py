#!/usr/bin/env python
"""Does `--publish` slow the classifier? `edgeclass run` over a folder of small JPEGs, without
and with `--publish mqtt://127.0.0.1:PORT/bench` to a local Mosquitto broker (QoS 1, every row
acknowledged before the run ends), alternating, several rounds. Prints the images/s of each
(median and range), their ratio (goal >= 0.97) and the CPU seconds (user + system) of each run,
with the CPU it was measured on.

The model: mobilevitv2_075 with random weights, INT8 calibrated on the images (made once, as
benchmarks.throughput makes it; needs the convert extra the first time), or --model DIR. The broker: Debian's `mosquitto` (scripts/install-test-system-deps.sh),
started here on 127.0.0.1 and stopped by its pid.

Usage: python -m benchmarks.publish [--images 400] [--rounds 5] [--precision int8] [--model DIR] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import cpu_name, free_port, make_images, make_model


def start_broker(folder: Path) -> tuple[subprocess.Popen, int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        raise SystemExit("no mosquitto: run scripts/install-test-system-deps.sh")
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def one_run(model: Path, folder: Path, work: Path, precision: str, publish: str | None) -> tuple[float, float]:
    """images/s (from the summary) and CPU seconds of one run."""
    summary = work / "summary.json"
    out = work / "out.csv"
    for f in work.glob("out.csv*"):
        f.unlink()
    args = [sys.executable, "-m", "edgeclass", "run", str(folder), "--model", str(model), "--precision",
            precision, "-o", str(out), "--summary-json", str(summary), "-q"]
    if publish:
        args += ["--publish", publish]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(args, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"run failed ({r.returncode}): {r.stderr}")
    data = json.loads(summary.read_text())
    if publish and any(t["pending"] for t in data.get("publish", [])):
        raise SystemExit("rows left pending: the broker did not take them")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return data["images_per_s"], cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--precision", default="int8", choices=["int8", "fp32"])
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=None)
    a = ap.parse_args()
    if a.images < 1 or a.rounds < 1:
        raise SystemExit("--images and --rounds: at least 1")
    work = a.work or Path(tempfile.mkdtemp(prefix="edgeclass-bench-publish-"))
    work.mkdir(parents=True, exist_ok=True)
    folder = make_images(work / f"small_{a.images}", a.images, None, ".jpg", seed=1)
    model = a.model or make_model(work, "mobilevitv2_075", folder)
    broker, port = start_broker(work)
    url = f"mqtt://127.0.0.1:{port}/bench"
    rates: dict[str, list[float]] = {"without": [], "with": []}
    cpus: dict[str, list[float]] = {"without": [], "with": []}
    try:
        one_run(model, folder, work, a.precision, None)  # warm the OpenVINO cache and the page cache
        for _ in range(a.rounds):
            for name, publish in (("without", None), ("with", url)):
                rate, cpu = one_run(model, folder, work, a.precision, publish)
                rates[name].append(rate)
                cpus[name].append(cpu)
    finally:
        broker.terminate()
        broker.wait(10)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical; {time.strftime('%Y-%m-%d')}")
    print(f"{a.images} small JPEGs, {a.precision}, {a.rounds} rounds (medians, range)")
    for name in rates:
        r, c = rates[name], cpus[name]
        print(f"  {name:7s} --publish: {statistics.median(r):7.1f} img/s ({min(r):.1f}-{max(r):.1f}), "
              f"CPU {statistics.median(c):.2f} s per run")
    ratio = statistics.median(rates["with"]) / statistics.median(rates["without"])
    print(f"  ratio with/without: {ratio:.3f} (goal >= 0.97)")


if __name__ == "__main__":
    main()
