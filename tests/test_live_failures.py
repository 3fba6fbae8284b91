"""Live sources that fail loudly: a camera down when the run ends (or that never delivered a
frame) is one status row and exit 1, however the run ended; a covered (blank) camera is one
`blank` row and exit 1; a moving picture is never blank or frozen. Real GStreamer RTSP servers
and MJPEG servers on 127.0.0.1; the metrics file is read with prometheus_client's parser."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import read_csv, run_cli
from streams import RtspServer, mjpeg_frame, mjpeg_server, rtsp_available

needs_rtsp = pytest.mark.skipif(rtsp_available() is not None, reason=str(rtsp_available()))


# ----------------------------------------------------------------------------- helpers
def read_metrics(path: Path) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} as Prometheus' own parser reads the file."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(path.read_text()) for s in family.samples}


def metric(metrics: dict, name: str, **labels) -> float:
    return metrics[(name, tuple(sorted(labels.items())))]


def assert_rows_match_output(metrics: dict, out: Path) -> None:
    """edgeclass_rows_total{status} is the output's rows by status (pandas), 0 for the others."""
    from edgeclass.results import Status

    counts = pd.read_csv(out)["status"].value_counts().to_dict()
    assert {s.value: metric(metrics, "edgeclass_rows_total", status=s.value) for s in Status} == \
        {s.value: counts.get(s.value, 0) for s in Status}


class LiveRun:
    """`edgeclass run` in a subprocess writing ``out.csv``; its rows so far (the partial file)
    and its stderr lines can be waited for."""

    def __init__(self, tmp_path: Path, *args: str):
        self.out = tmp_path / "out.csv"
        self.partial = tmp_path / ".out.csv.partial"
        self.proc = subprocess.Popen([sys.executable, "-m", "edgeclass", "run", *args, "-o", str(self.out)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read_err, daemon=True)
        self._reader.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)

    def rows(self) -> list[dict]:
        try:
            text = self.partial.read_text()
        except FileNotFoundError:
            return []
        return list(csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1])))

    def wait_until(self, condition, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, f"run ended before {what}: {''.join(self.err)}"
            assert time.monotonic() < deadline, f"no {what} within {timeout}s: {''.join(self.err)}"
            time.sleep(0.05)

    def rows_of(self, source: str) -> list[dict]:
        return [row for row in self.rows() if row["source"] == source]

    @property
    def output(self) -> Path:
        """Where the rows are after the run: a run stopped by a signal leaves them in the
        partial file (and says so), a finished one in the output."""
        if self.out.exists():
            return self.out
        assert f"the rows of this run are in {self.partial}" in "".join(self.err)
        return self.partial

    def end(self, sig: int | None = signal.SIGTERM, timeout: float = 60) -> int:
        if sig is not None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @contextmanager
    def driven(self, *servers):
        """The block that drives the run to its end; after it the run and ``servers`` are gone,
        also when a wait in it failed."""
        try:
            yield self
        finally:
            self.kill()
            for server in servers:
                server.kill()


def _status_rows(rows: list[dict]) -> list[dict]:
    return [row for row in rows if row["status"] != "ok"]


# ----------------------------------------------------------------------------- down at the end
@pytest.mark.stream
@needs_rtsp
def test_camera_killed_midrun_beside_a_live_one(tmp_path, trained_model_dir):
    """Two RTSP cameras; one server killed mid-run; the run stopped by SIGTERM while it is down:
    one failure row for it ("down since ..., N reconnects"), exit 1 (not 143), and in the
    metrics file edgeclass_source_up 0 for it and 1 for the other, rows as in the output."""
    live, dying = RtspServer().start(), RtspServer().start()
    metrics_file, summary = tmp_path / "edgeclass.prom", tmp_path / "summary.json"
    run = LiveRun(tmp_path, live.url, dying.url, "--model", str(trained_model_dir), "--every", "0.5",
                  "--read-timeout", "2", "--open-timeout", "2", "--reconnects", "50",
                  "--metrics-file", str(metrics_file), "--summary-json", str(summary))
    with run.driven(live, dying):
        run.wait_until(lambda: len(run.rows_of(live.url)) >= 2 and len(run.rows_of(dying.url)) >= 2,
                       "rows from both cameras")
        dying.kill()
        run.wait_until(lambda: any(dying.url in line and "(attempt 2/" in line for line in run.err),
                       "the killed camera's first reconnect refused")
        code = run.end(signal.SIGTERM)
    assert code == 1, "".join(run.err)
    rows = read_csv(run.output)
    dead = [row for row in rows if row["source"] == dying.url]
    assert {row["status"] for row in rows if row["source"] == live.url} == {"ok"}
    failures = _status_rows(dead)
    assert len(failures) == 1 and failures[0] is dead[-1], [(r["status"], r["error"]) for r in dead]
    assert failures[0]["status"] in ("timeout", "eof", "stream_error")
    assert "down since " in failures[0]["error"] and " reconnects" in failures[0]["error"]
    assert len(dead) >= 3  # its frames before the kill were classified

    m = read_metrics(metrics_file)
    health = json.loads(summary.read_text())["health"]
    assert metric(m, "edgeclass_source_up", source=live.url) == 1
    assert metric(m, "edgeclass_source_up", source=dying.url) == 0
    for url in (live.url, dying.url):
        assert metric(m, "edgeclass_source_frames_read_total", source=url) == health[url]["frames_read"] > 0
        assert metric(m, "edgeclass_source_reconnects_total", source=url) == health[url]["reconnects"]
        assert metric(m, "edgeclass_source_frames_dropped_total", source=url) == health[url]["dropped"]
    assert health[dying.url]["reconnects"] >= 1 and health[live.url]["reconnects"] == 0
    assert (metric(m, "edgeclass_exit_code"), metric(m, "edgeclass_running")) == (1, 0)
    assert metric(m, "edgeclass_last_success_timestamp_seconds") == 0  # no run has succeeded here
    assert_rows_match_output(m, run.output)


@pytest.mark.stream
def test_camera_down_when_max_runtime_ends(tmp_path, trained_model_dir):
    """--max-runtime (its timer) stops a run while a camera that died keeps refusing reconnects:
    the dead camera's one row, exit 1 (not 124); only ok rows for the healthy camera beside it."""
    with mjpeg_server(fps=10) as healthy, mjpeg_server(fps=10, frames=5, connections=1) as dying:
        r = run_cli("run", healthy, dying, "--model", str(trained_model_dir), "--every", "0.1",
                    "--reconnects", "1000", "--max-runtime", "4", timeout=120)
    assert r.returncode == 1, r.stderr
    assert "stopped by max-runtime" in r.stderr and "reconnecting" in r.stderr
    rows = read_csv(r.stdout)
    dead = [row for row in rows if row["source"] == dying]
    assert [row["status"] for row in dead[:-1]] == ["ok"] * (len(dead) - 1) and len(dead) >= 2
    assert dead[-1]["status"] in ("eof", "stream_error") and "down since " in dead[-1]["error"]
    assert "never delivered" not in dead[-1]["error"]
    assert {row["status"] for row in rows if row["source"] == healthy} == {"ok"}


@pytest.mark.stream
def test_duration_ends_while_camera_never_delivered(tmp_path, trained_model_dir):
    """--duration: a camera refusing every connection gets its one row when the duration ends
    (not after its reconnect attempts run out), with the reconnects it made; credentials masked."""
    port = _closed_port()
    url = f"rtsp://viewer:s3cret@127.0.0.1:{port}/cam"
    masked = f"rtsp://viewer:***@127.0.0.1:{port}/cam"
    summary = tmp_path / "s.json"
    r = run_cli("run", url, "--model", str(trained_model_dir), "--duration", "3", "--reconnects", "1000",
                "--summary-json", str(summary), timeout=120)
    assert r.returncode == 1, r.stderr
    rows = read_csv(r.stdout)
    health = json.loads(summary.read_text())["health"][masked]
    assert [(row["source"], row["status"]) for row in rows] == [(masked, "stream_error")]
    assert rows[0]["error"].endswith(f"never delivered a frame; down since {health['down_since']}, "
                                     f"{health['reconnects']} reconnects")
    assert health["reconnects"] >= 1 and health["up"] is False and health["frames_read"] == 0
    assert "s3cret" not in r.stdout + r.stderr + summary.read_text()


def _closed_port() -> int:
    """A port nothing listens on (connections refused at once)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- blank pictures
@pytest.mark.stream
@needs_rtsp
def test_covered_camera_is_blank_and_a_moving_one_never_is(tmp_path, trained_model_dir):
    """videotestsrc pattern=black (a covered camera) beside pattern=ball (a small ball moving over
    black), --blank-after 1 and --frozen-after 1: exactly one `blank` row for the black camera,
    nothing classified after it, and never a `frozen` row (a black picture is blank, not frozen);
    the moving camera only ok rows. Stopped while blank: exit 1."""
    black, ball = RtspServer(pattern="black").start(), RtspServer(pattern="ball").start()
    metrics_file, summary = tmp_path / "m.prom", tmp_path / "s.json"
    run = LiveRun(tmp_path, black.url, ball.url, "--model", str(trained_model_dir), "--every", "0.2",
                  "--blank-after", "1", "--frozen-after", "1", "--metrics-file", str(metrics_file),
                  "--summary-json", str(summary))
    with run.driven(black, ball):
        run.wait_until(lambda: any(row["status"] == "blank" for row in run.rows_of(black.url))
                       and len(run.rows_of(ball.url)) >= 10, "a blank row and 2 s of the moving camera")
        seen = len(run.rows_of(ball.url))
        # 2 s more: the black camera's frames keep coming, sampled but not classified
        run.wait_until(lambda: len(run.rows_of(ball.url)) >= seen + 10, "more of the moving camera")
        code = run.end(signal.SIGTERM)
    assert code == 1, "".join(run.err)
    rows = read_csv(run.output)
    black_rows = [row for row in rows if row["source"] == black.url]
    ball_rows = [row for row in rows if row["source"] == ball.url]
    statuses = [row["status"] for row in black_rows]
    assert statuses[-1] == "blank" and statuses.count("blank") == 1 and set(statuses[:-1]) <= {"ok"}
    assert black_rows[-1]["error"].startswith("blank picture for 1s (brightness within ")
    assert [line for line in run.err if line.startswith("blank: ")] == [  # said once, as its row
        f"blank: {black.url}: {black_rows[-1]['error']}\n"]
    assert {row["status"] for row in ball_rows} == {"ok"} and len(ball_rows) >= 20
    m = read_metrics(metrics_file)
    assert metric(m, "edgeclass_source_blank", source=black.url) == 1
    assert metric(m, "edgeclass_source_blank_episodes_total", source=black.url) == 1
    for name in ("edgeclass_source_blank", "edgeclass_source_blank_episodes_total", "edgeclass_source_frozen",
                 "edgeclass_source_frozen_episodes_total"):
        assert metric(m, name, source=ball.url) == 0
    assert metric(m, "edgeclass_source_frozen_episodes_total", source=black.url) == 0
    assert metric(m, "edgeclass_source_up", source=black.url) == metric(m, "edgeclass_source_up", source=ball.url) == 1
    assert_rows_match_output(m, run.output)
    health = json.loads(summary.read_text())["health"][black.url]
    assert health["frames_sampled"] >= health["rows"] + 5 and health["picture"] == "blank"


@pytest.mark.stream
def test_blank_ends_when_the_picture_returns(tmp_path, trained_model_dir):
    """A camera black for a while, then showing a picture again: one blank row, then its
    frames are classified again; --blank-after 0 turns the check off."""
    black = cv2.imencode(".jpg", np.full((120, 160, 3), 3, np.uint8))[1].tobytes()

    def frame_at(i: int) -> bytes:  # MJPEG has no timestamps: FFmpeg counts 25 fps; black from 0.4 s to 2.8 s
        return black if 10 <= i < 70 else mjpeg_frame(i)

    with mjpeg_server(fps=25, frames=100, frame_at=frame_at, connections=1) as url:
        r = run_cli("run", url, "--model", str(trained_model_dir), "--every", "0.2", "--blank-after", "1",
                    "--reconnects", "0", timeout=120)
    with mjpeg_server(fps=25, frames=100, frame_at=frame_at, connections=1) as url_off:
        off = run_cli("run", url_off, "--model", str(trained_model_dir), "--every", "0.2", "--blank-after", "0",
                      "--reconnects", "0", timeout=120)
    rows = read_csv(r.stdout)
    statuses = [row["status"] for row in rows]
    assert r.returncode == 1, r.stderr  # the server closes after 4 s
    assert statuses.count("blank") == 1 and statuses[-1] == "eof", statuses
    blank = statuses.index("blank")
    assert set(statuses[:blank]) == {"ok"} and set(statuses[blank + 1:-1]) == {"ok"} and blank >= 6
    assert "picture back (no longer blank)" in r.stderr
    # the samples of the blank picture after the row were not classified (1 s at least)
    assert int(rows[blank + 1]["frame"]) - int(rows[blank]["frame"]) >= 5
    off_statuses = [row["status"] for row in read_csv(off.stdout)]
    assert "blank" not in off_statuses and off_statuses.count("ok") >= 15


# ----------------------------------------------------------------------------- the blank measure


