"""Video files and live streams with real parts: generated videos, GStreamer's RTSP server,
an MJPEG-over-HTTP server, a port that never answers, a server killed mid-stream."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import read_csv, run_cli
from edgeclass.media.video import mask_credentials
from streams import RtspServer, mjpeg_server, rtsp_available, silent_port

FPS = 10
N_FRAMES = 35


def write_video(path, n=N_FRAMES, fps=FPS, fourcc="mp4v", size=(160, 120)):
    """Frame i is filled with grey level 7*i, so a sampled frame can be identified."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened()
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), (7 * i) % 256, np.uint8))
    w.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def test_mask_credentials():
    assert mask_credentials("rtsp://admin:hunter2@10.0.0.5:554/s1") == "rtsp://admin:***@10.0.0.5:554/s1"
    assert mask_credentials("http://token@cam/x.mjpg") == "http://***@cam/x.mjpg"
    assert mask_credentials("rtsp://cam/x") == "rtsp://cam/x"


def test_video_sampled_by_media_time(video, trained_model_dir):
    r = run_cli("run", str(video), "--model", str(trained_model_dir), "--every", "1")
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    assert [(row["frame"], row["timestamp_ms"]) for row in rows] == [("0", "0"), ("10", "1000"), ("20", "2000"),
                                                                     ("30", "3000")]
    assert all(row["status"] == "ok" and row["source"] == str(video) for row in rows)


def test_video_every_n_frames(video, trained_model_dir):
    r = run_cli("run", str(video), "--model", str(trained_model_dir), "--every-frame", "7")
    rows = read_csv(r.stdout)
    assert [int(row["frame"]) for row in rows] == [0, 7, 14, 21, 28]
    assert [float(row["timestamp_ms"]) for row in rows] == [0, 700, 1400, 2100, 2800]


def test_sampled_frames_are_the_right_frames(video):
    """The frames edgeclass hands to the model are the frames the rows name."""
    import threading

    from edgeclass.media.inputs import Source
    from edgeclass.media.preprocess import PreprocessConfig
    from edgeclass.media.video import VideoOptions, file_items

    pp = PreprocessConfig(input_size=(64, 64), crop_pct=1.0)
    items = list(file_items(Source(str(video), "video"), pp, VideoOptions(every_s=0.5), threading.Event(), set()))
    assert [it.frame for it in items] == [0, 5, 10, 15, 20, 25, 30]
    for it in items:
        assert round(float(it.load().mean()) / 7) == it.frame


def test_videos_images_and_folders_in_one_run(video, trained_model_dir, image_sets, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(video, folder / "b.mp4")
    shutil.copy(sorted(image_sets["run"].iterdir())[0], folder / "a.jpg")
    r = run_cli("run", str(folder), str(video), "--model", str(trained_model_dir), "--summary")
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    assert [row["source"].rsplit("/", 1)[-1] for row in rows] == ["a.jpg"] + ["b.mp4"] * 4 + ["clip.mp4"] * 4
    assert rows[0]["frame"] == ""
    assert "per video / stream" in r.stderr and "clip.mp4" in r.stderr


def test_unreadable_video_is_a_row(tmp_path, trained_model_dir):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    r = run_cli("run", str(bad), "--model", str(trained_model_dir))
    assert r.returncode == 1
    rows = read_csv(r.stdout)
    assert len(rows) == 1 and rows[0]["status"] == "stream_error"


def test_video_resume_after_kill_redoes_cut_video(tmp_path, trained_model_dir, video):
    out = tmp_path / "out.csv"
    long_video = write_video(tmp_path / "long.mp4", n=600)
    args = ("run", str(video), str(long_video), "--model", str(trained_model_dir), "-o", str(out), "--resume",
            "--every-frame", "1", "--threads", "1")
    proc = subprocess.Popen([sys.executable, "-m", "edgeclass", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"long.mp4") < 50):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    rows = read_csv(out)
    frames = [(row["source"].rsplit("/", 1)[-1], int(row["frame"])) for row in rows]
    assert sorted(frames) == sorted([("clip.mp4", i) for i in range(N_FRAMES)] + [("long.mp4", i) for i in range(600)])


# ----------------------------------------------------------------------------- live sources
needs_rtsp = pytest.mark.skipif(rtsp_available() is not None, reason=str(rtsp_available()))


@pytest.fixture
def rtsp():
    server = RtspServer().start()
    yield server
    server.kill()


@needs_rtsp
def test_rtsp_stream(rtsp, trained_model_dir):
    url = rtsp.url.replace("rtsp://", "rtsp://viewer:s3cret@")
    r = run_cli("run", url, "--model", str(trained_model_dir), "--max-frames", "4", "--every", "0.2", "--summary",
                timeout=120)
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    assert len(rows) == 4 and all(row["status"] == "ok" for row in rows)
    assert [int(row["frame"]) for row in rows] == [0, 1, 2, 3]
    ts = [float(row["timestamp_ms"]) for row in rows]
    assert ts == sorted(ts) and ts[-1] - ts[0] >= 500  # ~0.2 s apart, by the clock since opening
    assert rows[0]["source"] == rtsp.url.replace("rtsp://", "rtsp://viewer:***@")
    assert "s3cret" not in r.stdout + r.stderr


@needs_rtsp
def test_rtsp_tcp_option(rtsp, trained_model_dir):
    r = run_cli("run", rtsp.url, "--model", str(trained_model_dir), "--max-frames", "2", "--every", "0.1",
                "--rtsp-tcp", timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(read_csv(r.stdout)) == 2


@needs_rtsp
def test_server_killed_midstream_ends_with_status(rtsp, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "-m", "edgeclass", "run", rtsp.url, "--model", str(trained_model_dir),
                             "-o", str(out), "--every", "0.2", "--read-timeout", "2", "--open-timeout", "2",
                             "--reconnects", "1", "--duration", "120"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not (tmp_path / ".out.csv.partial").exists()
                                           or (tmp_path / ".out.csv.partial").read_bytes().count(b"\n") < 4):
        time.sleep(0.05)
    rtsp.kill()
    t_kill = time.monotonic()
    _, err = proc.communicate(timeout=60)  # must not hang
    assert time.monotonic() - t_kill < 40
    assert proc.returncode == 1, err
    rows = read_csv(out)
    assert [row["status"] for row in rows[:3]] == ["ok"] * 3
    assert rows[-1]["status"] in ("timeout", "eof", "stream_error") and "gave up" in rows[-1]["error"]
    assert "reconnecting" in err


@needs_rtsp
def test_reconnects_when_server_comes_back(trained_model_dir, tmp_path):
    server = RtspServer().start()
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "-m", "edgeclass", "run", server.url, "--model", str(trained_model_dir),
                             "-o", str(out), "--every", "0.2", "--read-timeout", "2", "--open-timeout", "3",
                             "--reconnects", "5", "--max-frames", "12"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        partial = tmp_path / ".out.csv.partial"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not partial.exists() or partial.read_bytes().count(b"\n") < 3):
            time.sleep(0.05)
        server.kill()
        time.sleep(2)
        server = RtspServer(server.port).start()
        _, err = proc.communicate(timeout=120)
    finally:
        server.kill()
        proc.kill()
    assert "reconnecting" in err
    rows = read_csv(out)
    ok = [row for row in rows if row["status"] == "ok"]
    assert len(ok) == 12  # frames after the reconnect too
    assert proc.returncode == 0, err


def test_url_that_never_answers_ends_within_open_timeout(trained_model_dir, image_sets):
    with silent_port() as port:
        t0 = time.monotonic()
        r = run_cli("run", f"rtsp://127.0.0.1:{port}/cam", str(image_sets["run"]), "--model", str(trained_model_dir),
                    "--open-timeout", "2", "--reconnects", "0", timeout=60)
        elapsed = time.monotonic() - t0
    assert elapsed < 30
    assert r.returncode == 1
    rows = read_csv(r.stdout)
    statuses = {row["source"].rsplit("/", 1)[-1]: row["status"] for row in rows}
    assert statuses["cam"] in ("timeout", "stream_error")
    # the dead camera did not block the images of the same run
    assert sum(1 for row in rows if row["status"] == "ok") == 12


def test_mjpeg_over_http(trained_model_dir):
    with mjpeg_server() as url:
        r = run_cli("run", url, "--model", str(trained_model_dir), "--max-frames", "3", "--every", "0.1", timeout=60)
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    assert len(rows) == 3 and all(row["status"] == "ok" and row["source"] == url for row in rows)
