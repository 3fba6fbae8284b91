#!/usr/bin/env python
"""`edgeclass run --ray` against a plain `edgeclass run` on the same images, on this box, and a
simulated scale-out (Ray nodes on one box with the CPUs split between them).

Each configuration is one run of the real command; rows/s is the run's own figure from
`--summary-json` (listing, actor start-up and compilation included; Ray's connection not).
Clusters are real `ray start --block` processes on 127.0.0.1 with a head that only drives
(`--num-cpus 0`), so every CPU counted classifies:

* plain run (threads = all CPUs)
* 1 node x 2 CPUs   (one actor, 2 inference threads)      -> the >= 0.8x goal vs plain
* 2 nodes x 1 CPU   (two actors, one per node)            -> rows/s per CPU vs 1 x 2
* then: what N nodes of C CPUs would do at the measured rows/s per CPU.

Each configuration runs ``--repeat`` times (2) and the best is shown: the box is shared.

Usage: python -m benchmarks.ray MODEL_DIR [--images 2000] [--repeat 2] [--project-nodes 10 --project-cpus 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import free_port

RAY = str(Path(sys.executable).with_name("ray"))
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def alive_nodes(address: str) -> int:
    out = subprocess.run([RAY, "status", "--address", address], env=ENV, capture_output=True, text=True)
    return out.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0].count(" node_") if out.returncode == 0 else 0


def start_cluster(node_cpus: list[int], temp: str) -> tuple[str, list[subprocess.Popen]]:
    """A driving head (0 CPUs) and one node per entry of ``node_cpus``."""
    address = f"127.0.0.1:{free_port()}"
    common = ["--block", "--node-ip-address", "127.0.0.1", "--object-store-memory", str(100 << 20), "--disable-usage-stats"]
    procs = []
    for i, cpus in enumerate([0, *node_cpus]):
        where = ["--head", "--port", address.split(":")[1], "--include-dashboard=false", "--temp-dir", temp] if i == 0 \
            else ["--address", address]
        procs.append(subprocess.Popen([RAY, "start", *where, "--num-cpus", str(cpus), *common], env=ENV,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        deadline = time.monotonic() + 120
        while alive_nodes(address) < i + 1:
            if time.monotonic() > deadline:
                raise RuntimeError("cluster did not start")
    return address, procs


def stop_cluster(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def run(images: Path, model: Path, out: Path, *extra: str) -> dict:
    summary = out.with_suffix(".json")
    r = subprocess.run([sys.executable, "-m", "edgeclass", "run", str(images), "-m", str(model), "-o", str(out),
                        "-q", "--summary-json", str(summary), *extra], env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(summary.read_text())


def best(runs: list[dict]) -> dict:
    """The run with the best steady rate (the box is shared: the slower runs met other work)."""
    return max(runs, key=lambda r: r.get("ray", {}).get("rows_per_s_after_first") or r["images_per_s"])


def on_cluster(images: Path, model: Path, out: Path, node_cpus: list[int], repeat: int) -> dict:
    temp = tempfile.mkdtemp(prefix="ecbench")
    address, procs = start_cluster(node_cpus, temp)
    try:
        return best([run(images, model, out.with_name(f"{out.stem}{i}.csv"), "--ray", address) for i in range(repeat)])
    finally:
        stop_cluster(procs)
        shutil.rmtree(temp, ignore_errors=True)  # Ray's session logs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    ap.add_argument("--repeat", type=int, default=2, help="runs per configuration (the best is shown)")
    ap.add_argument("--project-nodes", type=int, default=10)
    ap.add_argument("--project-cpus", type=int, default=2, help="CPUs per node of the projected cluster")
    args = ap.parse_args()
    from scripts import train_test_model

    cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        train_test_model.write_images(folder, per_class=args.images // 4, seed=11, imagefolder=False, ext=".jpg",
                                      size=tuple(args.size))
        n = len(list(folder.iterdir()))
        print(f"{n} JPEGs {args.size[1]}x{args.size[0]}, model {args.model_dir}, {cpus} CPUs on this box")
        results = {"plain": best([run(folder, args.model_dir, Path(tmp) / "plain.csv") for _ in range(args.repeat)])}
        results["1x2"] = on_cluster(folder, args.model_dir, Path(tmp) / "one.csv", [2], args.repeat)
        results["2x1"] = on_cluster(folder, args.model_dir, Path(tmp) / "two.csv", [1, 1], args.repeat)
        same = (Path(tmp) / "one0.csv").read_bytes() == (Path(tmp) / "plain.csv").read_bytes()
    plain = results["plain"]["images_per_s"]
    print("rows/s whole run (start-up included) | after the first rows (actors started, models compiled)")
    print(f"{'configuration':28} {'rows/s':>8} {'vs plain':>9} {'steady':>8} {'per CPU':>8} {'vs plain':>9}")
    for name, label in (("plain", "plain run (2 threads)"), ("1x2", "--ray: 1 node x 2 CPUs"), ("2x1", "--ray: 2 nodes x 1 CPU")):
        rate = results[name]["images_per_s"]
        steady = results[name]["ray"]["rows_per_s_after_first"] if name != "plain" else plain
        print(f"{label:28} {rate:8.1f} {rate / plain:8.2f}x {steady:8.1f} {steady / cpus:8.1f} {steady / plain:8.2f}x")
        if name != "plain":
            print(f"{'':28} rows per node: {results[name]['ray']['rows_per_node']}")
    print(f"1 x 2 CPUs output identical to the plain run: {same}")
    per_cpu = results["2x1"]["ray"]["rows_per_s_after_first"] / 2
    scaling = results["2x1"]["ray"]["rows_per_s_after_first"] / results["1x2"]["ray"]["rows_per_s_after_first"]
    total = per_cpu * args.project_nodes * args.project_cpus
    print(f"scale-out: 2 x 1 CPU gives {scaling:.2f}x the rows/s of 1 x 2 CPUs (same CPUs, twice the nodes)")
    print(f"projection: {args.project_nodes} nodes x {args.project_cpus} CPUs at {per_cpu:.1f} rows/s per CPU "
          f"= {total:.0f} rows/s ({total * 3600 / 1e6:.2f} M images/hour), if storage and the driver keep up")


if __name__ == "__main__":
    main()
