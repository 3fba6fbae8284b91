#!/usr/bin/env python
"""Does `--publish` slow the classifier? `edgeclass run` over a folder of small JPEGs, without
and with `--publish mqtt://127.0.0.1:PORT/bench` to a local Mosquitto broker (QoS 1, every row
acknowledged before the run ends), alternating (which goes first alternates too), several
rounds. Prints the images/s of each (median and range), their ratio (goal >= 0.97: of the
medians, and the median of each round's ratio) and the CPU seconds (user + system) of each run,
with the CPU it was measured on.

`--live SECONDS`: instead, what publishing costs a live camera. A 640x480 MJPEG camera served
here on 127.0.0.1 (multipart over HTTP, as IP cameras serve it, `--fps` frames a second);
`edgeclass run URL --every E` without and with `--publish`, alternating; the CPU of the run's
process (user + system, every thread, from /proc) over SECONDS once its first row is out (model
loading not counted), as % of one core, and the rows it wrote, for each `--every` given.

The model: mobilevitv2_075 with random weights, INT8 calibrated on the images (made once, as
benchmarks.throughput makes it; needs the convert extra the first time), or --model DIR. The
broker: Debian's `mosquitto` (scripts/install-test-system-deps.sh), started here on 127.0.0.1
and stopped by its pid.

Usage: python -m benchmarks.publish [--images 400] [--rounds 5] [--precision int8] [--model DIR] [--work DIR]
       python -m benchmarks.publish --live 30 [--every 1 0.1] [--fps 15] [--rounds 2] ...
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

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


class MjpegCamera:
    """A live camera on 127.0.0.1: 640x480 JPEGs (textured, some 40 KB each) as
    multipart/x-mixed-replace over HTTP, ``fps`` a second, to every client until :meth:`close`."""

    def __init__(self, fps: float):
        rng = np.random.default_rng(0)
        frames = []
        for i in range(25):
            small = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
            img = cv2.resize(small, (640, 480), interpolation=cv2.INTER_CUBIC)
            cv2.circle(img, (320 + 8 * i, 240), 90, (255, 255, 255), -1)
            frames.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
        closing = self._closing = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i, start = 0, time.monotonic()
                while not closing.is_set():
                    data = frames[i % len(frames)]
                    try:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    i += 1
                    closing.wait(max(0.0, start + i / fps - time.monotonic()))

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def live_run(model: Path, url: str, work: Path, a: argparse.Namespace, every: float,
             publish: str | None) -> tuple[float, int]:
    """% of one core and rows written over ``a.live`` seconds of one live run (after its first row)."""
    out = work / "live.csv"
    for f in work.glob("live.csv*"):
        f.unlink()
    args = [sys.executable, "-m", "edgeclass", "run", url, "--model", str(model), "--precision", a.precision,
            "--every", str(every), "-o", str(out), "--resume", "-q"] + (["--publish", publish] if publish else [])
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_bytes().count(b"\n") >= 2):  # the header and a first row
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the live run did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.1)
        rows0, cpu0, t0 = out.read_bytes().count(b"\n"), proc_cpu_s(proc.pid), time.monotonic()
        time.sleep(a.live)
        cpu1, t1, rows1 = proc_cpu_s(proc.pid), time.monotonic(), out.read_bytes().count(b"\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 100 * (cpu1 - cpu0) / (t1 - t0), rows1 - rows0


def live(model: Path, folder: Path, work: Path, url: str, a: argparse.Namespace) -> None:
    """A live camera's CPU without and with --publish, for each ``a.every``; printed."""
    camera = MjpegCamera(a.fps)
    results: dict[tuple[float, str], list[tuple[float, int]]] = {}
    try:
        for _ in range(a.rounds):
            for every in a.every:
                for name, publish in (("without", None), ("with", url)):
                    results.setdefault((every, name), []).append(live_run(model, camera.url, work, a, every, publish))
    finally:
        camera.close()
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical; {time.strftime('%Y-%m-%d')}")
    print(f"one live MJPEG camera, 640x480 at {a.fps:g} fps, {a.precision}; CPU of the run's process over "
          f"{a.live:g} s after its first row, % of one core (median of {a.rounds} rounds)")
    for every in a.every:
        line = []
        for name in ("without", "with"):
            got = results[(every, name)]
            pct = statistics.median(c for c, _ in got)
            line.append(f"{name} --publish {pct:5.1f} % ({statistics.median(r for _, r in got):.0f} rows)")
        print(f"  --every {every:g}: " + "; ".join(line))


def throughput(model: Path, folder: Path, work: Path, url: str, a: argparse.Namespace) -> None:
    """images/s without and with --publish, alternating, ``a.rounds`` rounds; printed."""
    rates: dict[str, list[float]] = {"without": [], "with": []}
    cpus: dict[str, list[float]] = {"without": [], "with": []}
    one_run(model, folder, work, a.precision, None)  # warm the OpenVINO cache and the page cache
    for i in range(a.rounds):  # which goes first alternates: a drift of the box cancels out
        for name, publish in (("without", None), ("with", url))[::1 if i % 2 == 0 else -1]:
            rate, cpu = one_run(model, folder, work, a.precision, publish)
            rates[name].append(rate)
            cpus[name].append(cpu)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical; {time.strftime('%Y-%m-%d')}")
    print(f"{a.images} small JPEGs, {a.precision}, {a.rounds} rounds (medians, range)")
    for name in rates:
        r, c = rates[name], cpus[name]
        print(f"  {name:7s} --publish: {statistics.median(r):7.1f} img/s ({min(r):.1f}-{max(r):.1f}), "
              f"CPU {statistics.median(c):.2f} s per run")
    ratio = statistics.median(rates["with"]) / statistics.median(rates["without"])
    paired = statistics.median(w / wo for w, wo in zip(rates["with"], rates["without"]))
    print(f"  ratio with/without: {ratio:.3f} of the medians, {paired:.3f} the median of each round's "
          "(goal >= 0.97)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--precision", default="int8", choices=["int8", "fp32"])
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--live", type=float, default=0, metavar="SECONDS", help="a live camera's CPU instead")
    ap.add_argument("--every", type=float, nargs="+", default=[1.0, 0.1], help="with --live")
    ap.add_argument("--fps", type=float, default=15.0, help="with --live: the camera's frame rate")
    a = ap.parse_args()
    if a.images < 1 or a.rounds < 1:
        raise SystemExit("--images and --rounds: at least 1")
    work = a.work or Path(tempfile.mkdtemp(prefix="edgeclass-bench-publish-"))
    work.mkdir(parents=True, exist_ok=True)
    folder = make_images(work / f"small_{a.images}", a.images, None, ".jpg", seed=1)
    model = a.model or make_model(work, "mobilevitv2_075", folder)
    broker, port = start_broker(work)
    url = f"mqtt://127.0.0.1:{port}/bench"
    try:
        (live if a.live else throughput)(model, folder, work, url, a)
    finally:
        broker.terminate()
        broker.wait(10)


if __name__ == "__main__":
    main()
