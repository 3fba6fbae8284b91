"""``edgeclass run --ray`` on a real Ray cluster: a head and extra nodes started by the tests as
``ray start --block`` subprocesses on 127.0.0.1 (stopped by their process group), the real
actors, OpenVINO and files. Rows are compared with a single-box run of the same inputs."""

from __future__ import annotations

import collections
import csv
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import train_test_model
from conftest import run_cli
from edgeclass.modelfiles.folder import ModelDir

# token auth off: the test cluster lives on 127.0.0.1 and must not depend on ~/.ray
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE = str(100 * 1024 * 1024)  # small: a container's small /dev/shm is enough
# a cluster that notices a SIGKILLed node in seconds (Ray's RayConfig, read from RAY_<name>); the
# timeout stays generous so a node on a busy 2-core box is not declared dead while alive
FAST_DEATH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "3000",
              "RAY_health_check_failure_threshold": "3"}

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="pip install 'edgeclass[ray]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A head node, and nodes joined to it, each a ``ray start --block`` process group."""

    def __init__(self, cpus: int = 2, env: dict | None = None):
        self.temp = tempfile.mkdtemp(prefix="ecray")  # short: Ray's socket paths must fit 107 bytes
        self.address = f"127.0.0.1:{_free_port()}"
        self.env = {**os.environ, **RAY_ENV, **(env or {})}
        self.nodes: list[subprocess.Popen] = []
        self.killed: list[subprocess.Popen] = []
        self._start("--head", "--port", self.address.split(":")[1], "--include-dashboard=false",
                    "--temp-dir", self.temp, cpus=cpus)

    def _start(self, *args: str, cpus: int) -> subprocess.Popen:
        log = open(Path(self.temp) / f"node{len(self.nodes)}.log", "wb")
        proc = subprocess.Popen([RAY, "start", *args, "--num-cpus", str(cpus), "--block", "--node-ip-address",
                                 "127.0.0.1", "--object-store-memory", OBJECT_STORE, "--disable-usage-stats"],
                                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(proc)
        self.wait_nodes(len(self.nodes) - len(self.killed))
        return proc

    def add_node(self, cpus: int = 1) -> subprocess.Popen:
        return self._start("--address", self.address, cpus=cpus)  # waits for one more alive node

    def alive_nodes(self) -> int:
        out = subprocess.run([RAY, "status", "--address", self.address], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            return 0
        active = out.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return active.count(" node_")

    def wait_nodes(self, n: int, timeout: float = 120, exact: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while (self.alive_nodes() != n) if exact else (self.alive_nodes() < n):  # the cluster's own view
            for proc in (p for p in self.nodes if p not in self.killed):
                try:
                    proc.wait(timeout=0.5)  # a node that exits ends the wait: fail with its log
                    raise AssertionError(f"ray start exited: {(Path(self.temp) / 'node0.log').read_text()[-2000:]}")
                except subprocess.TimeoutExpired:
                    pass
            assert time.monotonic() < deadline, f"cluster did not reach {n} nodes"

    def kill_node(self, proc: subprocess.Popen) -> None:
        """SIGKILL to the whole node: ``ray start``, raylet, object store, workers."""
        self.killed.append(proc)
        workers = _own_group_workers(proc.pid)
        self._signal(proc, signal.SIGKILL)
        _kill_workers(workers)

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        workers = set().union(*(_own_group_workers(proc.pid) for proc in self.nodes))
        for proc in reversed(self.nodes):
            self._signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + 3  # one grace period for all nodes, not one each
        for proc in reversed(self.nodes):
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass  # `ray start --block` may outlive its raylet
        for proc in reversed(self.nodes):
            self._signal(proc, signal.SIGKILL)  # whatever of the node's group is left
            proc.wait()
        _kill_workers(workers)
        shutil.rmtree(self.temp, ignore_errors=True)


def _processes() -> dict[int, tuple[int, int]]:
    """Every process's parent and process group, from /proc."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[int(pid)] = (int(fields[1]), int(fields[2]))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _own_group_workers(pgid: int) -> set[int]:
    """The workers a node's raylet started in process groups of their own (a SIGKILL to the node's
    group leaves them running, orphaned): the children of the group's processes outside it."""
    procs = _processes()
    group = {pid for pid, (_, pgrp) in procs.items() if pgrp == pgid}
    return {pid for pid, (ppid, pgrp) in procs.items() if ppid in group and pgrp != pgid}


def _kill_workers(pids: set[int]) -> None:
    for pid in pids:
        try:  # still a Ray worker (not a pid reused since)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if cmdline.startswith(b"ray::") or b"default_worker.py" in cmdline:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(cpus=2)
    try:
        c.add_node(cpus=1)
        yield c
    finally:
        c.stop()


def write_video(path: Path, n: int = 35, fps: int = 10) -> Path:
    """Frame i is grey level 7*i, 10 fps: 3.5 s."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    for i in range(n):
        w.write(np.full((120, 160, 3), (7 * i) % 256, np.uint8))
    w.release()
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """Generated images of the four classes, hostile files, a video, a name that is not UTF-8."""
    root = tmp_path_factory.mktemp("ray_inputs")
    folder = root / "photos"
    truth = {str(p): train_test_model.CLASSES[label]
             for p, label in train_test_model.write_images(folder, per_class=6, seed=77, imagefolder=False, ext=".jpg")}
    (folder / "zz_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "zz_empty.png").write_bytes(b"")
    latin1 = os.fsdecode(bytes(folder) + b"/caf\xe9.jpg")
    shutil.copy(next(iter(truth)), latin1)
    video = write_video(root / "clip.mp4")
    return {"folder": folder, "truth": truth, "video": video, "missing": root / "gone.jpg"}


def _rows(path: Path) -> list[tuple[str, ...]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return [tuple(r) for r in csv.reader(fh)]


def _by_source(rows: list[tuple[str, ...]]) -> dict[str, list[tuple[str, ...]]]:
    out = collections.defaultdict(list)
    for r in rows[1:]:
        out[r[0]].append(r)
    return out


@needs_ray
@pytest.mark.slow
def test_rows_equal_a_single_box_run(cluster, inputs, trained_model_dir, tmp_path):
    args = [str(inputs["folder"]), str(inputs["missing"]), str(inputs["video"]), "-m", str(trained_model_dir), "-k", "3"]
    single = run_cli("run", *args, "-o", str(tmp_path / "single.csv"))
    ray = run_cli("run", *args, "-o", str(tmp_path / "ray.csv"), "--ray", cluster.address, "--ray-segment", "1",
                  "--summary-json", str(tmp_path / "s.json"), env=RAY_ENV)
    assert "Traceback" not in ray.stderr, ray.stderr
    assert single.returncode == ray.returncode == 1, ray.stderr  # corrupt, empty, missing: failures
    rows, expected = _rows(tmp_path / "ray.csv"), _rows(tmp_path / "single.csv")
    assert rows == expected  # same rows, same order, same bytes of every score

    by_source = _by_source(rows)
    assert by_source[str(inputs["folder"] / "zz_corrupt.jpg")][0][3] == "corrupt"
    assert by_source[str(inputs["folder"] / "zz_empty.png")][0][3] == "empty"
    assert by_source[str(inputs["missing"])][0][3] == "missing"
    latin1 = [rows for source, rows in by_source.items() if "/caf" in source]
    assert len(latin1) == 1 and latin1[0][0][3] == "ok"  # a name that is not UTF-8 reached the worker
    video = by_source[str(inputs["video"])]  # 4 ranges of 1 s, read on several actors
    assert [(r[1], r[2]) for r in video] == [("0", "0"), ("10", "1000"), ("20", "2000"), ("30", "3000")]
    assert {r[5] for r in rows[1:]} == {ModelDir(trained_model_dir).model_id("int8")}  # the driver's model id, every row
    top1 = {p: by_source[p][0][7] for p in inputs["truth"]}  # the trained model's labels, per row
    assert sum(top1[p] == label for p, label in inputs["truth"].items()) >= len(top1) / 2  # chance: 1/4; rows
    # shuffled between sources would fall to chance (the hard test model is about 73 % right)

    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["ray"]["nodes"] == 2 and summary["ray"]["units_lost"] == 0
    assert sum(summary["ray"]["rows_per_node"].values()) == len(rows) - 1 == summary["total"]


@needs_ray
@pytest.mark.slow
def test_model_update_on_the_cluster(cluster, inputs, trained_model_dir, tmp_path):
    """`--resume` after a model update, on a cluster: the rows of the other model are kept and
    counted; with `--redo-other-models` every input (images, failures, a video in 4 ranges) is
    classified again, once, and every row the driver writes names the new model."""
    ids = {p: ModelDir(trained_model_dir).model_id(p) for p in ("fp32", "int8")}
    args = [str(inputs["folder"]), str(inputs["video"]), "-m", str(trained_model_dir), "-k", "3"]
    single = run_cli("run", *args, "--precision", "int8", "-o", str(tmp_path / "single.csv"))
    out, s = tmp_path / "out.csv", tmp_path / "s.json"
    first = run_cli("run", *args, "--precision", "fp32", "-o", str(out), "--resume")  # the old model, one box
    assert single.returncode == first.returncode == 1, first.stderr  # corrupt and empty files
    n_inputs = len(_by_source(_rows(out)))
    assert {r[5] for r in _rows(out)[1:]} == {ids["fp32"]}

    on_ray = [*args, "--precision", "int8", "-o", str(out), "--resume", "--ray", cluster.address, "--ray-segment", "1",
              "--summary-json", str(s)]
    kept = run_cli("run", *on_ray, env=RAY_ENV)
    assert kept.returncode == 0, kept.stderr
    summary = json.loads(s.read_text())
    assert (summary["skipped_resume"], summary["kept_other_models"], summary["total"]) == (n_inputs, n_inputs, 0)
    assert summary["model_id"] == ids["int8"]

    redo = run_cli("run", *on_ray, "--redo-other-models", env=RAY_ENV)
    assert redo.returncode == 1 and "Traceback" not in redo.stderr, redo.stderr
    summary = json.loads(s.read_text())
    assert (summary["skipped_resume"], summary["kept_other_models"]) == (0, 0) and summary["ray"]["units_lost"] == 0
    rows = _rows(out)
    assert rows == _rows(tmp_path / "single.csv")  # each input once, the new model's rows, in input order
    assert {r[5] for r in rows[1:]} == {ids["int8"]} and len(_by_source(rows)) == n_inputs


def _row_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") - 1 if path.exists() else 0


def _until(condition, proc: subprocess.Popen) -> bool:
    """Wait until ``condition()`` holds (True) or the run ``proc`` ended first (False)."""
    while not condition():
        try:
            proc.wait(timeout=0.05)
            return False
        except subprocess.TimeoutExpired:
            pass
    return True


def _classifying_on(node: subprocess.Popen) -> bool:
    """An actor of ``node`` is inside a task: Ray titles a worker process ``ray::<actor>.<method>``
    while it runs one (``ray::MapWorker(MapBatches(RayClassifier)).submit``)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").strip()
            if title.startswith("ray::MapWorker") and title.endswith(".submit"):
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                if os.getpgid(parent) == node.pid:  # its raylet belongs to this node's group
                    return True
        except (OSError, ValueError, IndexError):
            continue
    return False


def _run_bg(*args: str, err: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgeclass", *args], env={**os.environ, **RAY_ENV},
                            stdout=subprocess.DEVNULL, stderr=open(err, "wb"), start_new_session=True)


@needs_ray
@pytest.mark.slow
def test_killed_worker_node_then_killed_driver_then_resume_is_exact(trained_model_dir, tmp_path):
    folder = tmp_path / "many"
    for path, _ in train_test_model.write_images(folder, per_class=25, seed=5, imagefolder=False, ext=".png"):
        # 960x720 PNGs: ~50 ms each on one CPU, so a node still holds seconds of work when killed
        image = cv2.imread(str(path))
        cv2.imwrite(str(path), cv2.resize(image, (960, 720), interpolation=cv2.INTER_NEAREST),
                    [cv2.IMWRITE_PNG_COMPRESSION, 1])
    out = tmp_path / "out.csv"
    args = ["run", str(folder), "-m", str(trained_model_dir), "-o", str(out), "--resume"]
    # the same command without the cluster, as a user runs it (no thread settings)
    single = run_cli(*args[:4], "-o", str(tmp_path / "single.csv"))
    assert single.returncode == 0, single.stderr

    # the head only drives: all classifying happens on the other nodes. A killed node is declared
    # dead after 3 missed health checks 1 s apart (Ray's default: 5 missed, 3 s apart, ~20 s)
    cluster = Cluster(cpus=0, env=FAST_DEATH)
    try:
        args += ["--ray", cluster.address]
        doomed = cluster.add_node(cpus=1)
        first = _run_bg(*args, err=tmp_path / "first.err")
        assert _until(lambda: _classifying_on(doomed), first)  # work in flight, nothing written yet
        first.kill()  # SIGKILL the driver: its job and actors end with it
        first.wait()

        second = _run_bg(*args, err=tmp_path / "second.err")
        # rows written, and the node busy with the next ones
        assert _until(lambda: _row_count(out) > 0 and _classifying_on(doomed), second)
        cluster.kill_node(doomed)
        cluster.wait_nodes(1, exact=True)
        cluster.add_node(cpus=1)  # the actor comes back here and the run goes on
        # the run goes on without the node; what the node held when killed (if Ray had not handed
        # it on yet) is reported lost, exit 1, and left to --resume
        code, err = second.wait(timeout=300), (tmp_path / "second.err").read_text()
        assert (code, "work units lost with failed workers; rerun with --resume" in err) in ((0, False), (1, True)), err
        assert "Traceback" not in err

        last = run_cli(*args, "--summary-json", str(tmp_path / "last.json"), env=RAY_ENV)
        assert last.returncode == 0, last.stderr
    finally:
        cluster.stop()
    rows = _rows(out)
    counts = collections.Counter(r[0] for r in rows[1:])
    assert len(counts) == 100 and set(counts.values()) == {1}  # every input exactly once
    assert sorted(rows[1:]) == sorted(_rows(tmp_path / "single.csv")[1:])  # and the right rows
    summary = json.loads((tmp_path / "last.json").read_text())
    assert summary["skipped_resume"] + summary["total"] == 100


@needs_ray
@pytest.mark.slow
def test_local_cluster_for_one_run(inputs, trained_model_dir, tmp_path):
    args = [str(inputs["folder"]), "-m", str(trained_model_dir)]
    single = run_cli("run", *args, "-o", str(tmp_path / "single.csv"))
    ray = run_cli("run", *args, "-o", str(tmp_path / "ray.csv"), "--ray", "local", "--threads", "2", env=RAY_ENV)
    assert single.returncode == ray.returncode == 1, ray.stderr
    assert _rows(tmp_path / "ray.csv") == _rows(tmp_path / "single.csv")
    assert "1 nodes, 1 actors x 2 CPUs" in ray.stderr


def test_without_ray_the_option_says_how_to_install_it(tmp_path):
    fake = tmp_path / "site" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    r = run_cli("run", "x.jpg", "--ray", "auto", env={"PYTHONPATH": str(fake.parent)})
    assert r.returncode == 2
    assert "pip install 'edgeclass[ray]'" in r.stderr and "Traceback" not in r.stderr


@needs_ray
@pytest.mark.parametrize("args, message", [
    (["rtsp://127.0.0.1:9/cam", "--ray", "local"], "live streams and cameras stay on one box"),
    (["/dev/video0", "--ray", "local"], "live streams and cameras stay on one box"),
    (["x.jpg", "--ray", "not an address"], "expected auto, local or HOST:PORT"),
])
def test_refused_before_any_work(args, message):
    r = run_cli("run", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
