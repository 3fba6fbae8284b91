"""Video files and live streams with real parts: generated videos (x264 with a fixed GOP and
frames that carry their index), GStreamer's RTSP server, MJPEG-over-HTTP servers (flooding,
dying, frozen), live HLS from a local HTTP server, a port that never answers, a server killed
mid-stream."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import read_csv, run_cli
from streams import (RtspServer, coded_video, encode_video, live_hls_server, mjpeg_frame, mjpeg_server, read_code,
                     rtsp_available, silent_port, write_hls)

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


def test_summary_table_only_with_summary_flag(video, trained_model_dir):
    base = ("run", str(video), "--model", str(trained_model_dir))
    plain, quiet, asked, quiet_asked = (run_cli(*base, *extra) for extra in ((), ("-q",), ("--summary",),
                                                                             ("-q", "--summary")))
    for r in (plain, quiet, asked, quiet_asked):
        assert r.returncode == 0, r.stderr
        assert [row["frame"] for row in read_csv(r.stdout)] == ["0", "10", "20", "30"]
    assert "per video / stream" not in plain.stderr and "done:" in plain.stderr
    assert quiet.stderr == ""
    assert "per video / stream" in asked.stderr
    assert "per video / stream" in quiet_asked.stderr and "done:" not in quiet_asked.stderr


def test_unreadable_video_is_a_row(tmp_path, trained_model_dir):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    r = run_cli("run", str(bad), "--model", str(trained_model_dir))
    assert r.returncode == 1
    rows = read_csv(r.stdout)
    # not a video is final (corrupt), not a transient stream_error a resumed run would redo forever
    assert [(row["status"], row["error"]) for row in rows] == [("corrupt", "not a readable video (unknown format, or cut before its index)")]


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


# ----------------------------------------------------------------------------- exact frames (x264, GOP 50)
FPS25, GOP, N_CODED = 25, 50, 300  # 12 s; key frames every 2 s, B-frames


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    return coded_video(tmp_path_factory.mktemp("coded") / "coded.mp4", N_CODED, FPS25, GOP)


def _expected(every_s=None, every_frame=None, keyframes=False):
    """Frame indices a correct reader returns: the first frame at or after each target."""
    if every_frame:
        return list(range(0, N_CODED, every_frame))
    out, k = [], 0
    while True:
        i = -(-round(k * every_s * FPS25 * 1000) // 1000)  # ceil(k * every * fps), exact
        if keyframes:
            i = -(-i // GOP) * GOP
        if i >= N_CODED:
            return sorted(set(out))
        out.append(i)
        k += 1


@pytest.mark.parametrize("kw, mode", [
    ({"every_s": 0.52}, "sequential"),  # interval < GOP: decode through, convert samples only
    ({"every_s": 2.6}, "seek"),  # interval >= GOP: seek to the key frame before each target
    ({"every_s": 7.0}, "seek"),
    ({"every_frame": 7}, "sequential"),
    ({"every_frame": 77}, "seek"),
    ({"every_s": 1.0, "keyframes": True}, "keyframes"),
    ({"every_s": 3.0, "keyframes": True}, "keyframe-seek"),  # interval >= GOP: one key packet decoded per sample
])
def test_each_sample_is_the_exact_frame(coded, kw, mode):
    """The pixels handed on for each sample are the frame the row names (read from the barcode
    each frame carries), whichever path the file is read by."""
    import threading

    from edgeclass.media.video import VideoOptions
    from edgeclass.media.video.files import plan
    from edgeclass.media.video.reader import AvReader

    options = VideoOptions(**kw)
    with AvReader(str(coded), options, live=False) as reader:
        chosen, samples = plan(reader, options, threading.Event())
        got = [(s.index, round(s.time_s * 1000, 1), read_code(s.frame.pixels()())) for s in samples]
    assert chosen == mode
    expected = _expected(kw.get("every_s"), kw.get("every_frame"), kw.get("keyframes", False))
    assert [g[0] for g in got] == expected
    assert [g[2] for g in got] == expected  # the barcode in the pixels: the frame itself
    assert [g[1] for g in got] == [i * 40.0 for i in expected]  # media time of that frame


def test_range_items_give_the_rows_of_the_whole_file(coded):
    """A piece of a file (another box's share) yields exactly that span's samples."""
    import threading

    from edgeclass.media.inputs import Source
    from edgeclass.media.preprocess import PreprocessConfig
    from edgeclass.media.video import VideoOptions, duration_ms, file_items, range_items

    pp = PreprocessConfig(input_size=(32, 32), crop_pct=1.0)
    src = Source(str(coded), "video")
    for options in (VideoOptions(every_s=0.4), VideoOptions(every_s=2.4)):
        whole = [(it.frame, it.timestamp_ms) for it in file_items(src, pp, options, threading.Event(), set())]
        pieces = [(it.frame, it.timestamp_ms) for start, end in ((0, 4800), (4800, 9600), (9600, None))
                  for it in range_items(src, pp, options, start, end)]
        assert pieces == whole and len(whole) == len(_expected(options.every_s))
    assert duration_ms(str(coded)) == pytest.approx(12000, abs=1)


def _png_rows(tmp_path, video_path, indices):
    """Reference frames: the file decoded front to back by the test itself (frames counted in
    presentation order), saved losslessly as images."""
    import av

    paths = {}
    with av.open(str(video_path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                paths[i] = tmp_path / f"ref_{i:04d}.png"
                cv2.imwrite(str(paths[i]), frame.to_ndarray(format="bgr24"))
    return paths


@pytest.fixture(scope="module")
def class_video(tmp_path_factory):
    """4 s at 25 fps, GOP 50: one generated class image per second (circle, square, triangle, stripes)."""
    import train_test_model

    rng = np.random.default_rng(7)
    images = [cv2.cvtColor(train_test_model.make_image(c, rng, (240, 320)), cv2.COLOR_RGB2BGR) for c in range(4)]
    path = tmp_path_factory.mktemp("classes") / "classes.mp4"
    return encode_video(path, (images[i // 25] for i in range(100)), FPS25, GOP)


@pytest.mark.parametrize("args, frames, tolerance", [
    (("--every", "0.4", "--full-decode"), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90], 1e-5),
    (("--every", "2.2", "--full-decode"), [0, 55], 1e-5),  # seeking
    (("--keyframes", "--full-decode"), [0, 50], 1e-5),
    # default: large frames converted at reduced scale (area) before the resampler, like DCT-scaled JPEGs
    # (how far it moves depends on the freshly trained model: 0.0504 seen on one, so 0.1)
    (("--every", "0.4"), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90], 0.1),
])
def test_video_rows_match_the_same_frames_as_images(class_video, trained_model_dir, tmp_path, args, frames,
                                                    tolerance):
    """Each row's label and score are those `edgeclass run` gives the same frame as an image file
    (one preprocessing path, the right frame, colours in the right order)."""
    refs = _png_rows(tmp_path, class_video, set(frames))
    r = run_cli("run", str(class_video), *map(str, refs.values()), "--model", str(trained_model_dir), *args,
                "--top-k", "4")
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    video_rows = [row for row in rows if row["source"] == str(class_video)]
    by_png = {row["source"]: row for row in rows if row["source"].endswith(".png")}
    assert [int(row["frame"]) for row in video_rows] == frames
    assert [float(row["timestamp_ms"]) for row in video_rows] == [i * 40.0 for i in frames]
    for row in video_rows:
        ref = by_png[str(refs[int(row["frame"])])]
        assert row["status"] == ref["status"] == "ok"
        if tolerance < 1e-3:  # (near ties may swap on the reduced path; its probabilities are checked)
            assert row["top1_label"] == ref["top1_label"], (row["frame"], row["top1_label"], ref["top1_label"])
        # the same pixels through the same preprocessing: the same probabilities for all 4 classes
        scores = {row[f"top{k}_label"]: float(row[f"top{k}_score"]) for k in range(1, 5)}
        ref_scores = {ref[f"top{k}_label"]: float(ref[f"top{k}_score"]) for k in range(1, 5)}
        assert scores == pytest.approx(ref_scores, abs=tolerance)


def test_keyframes_with_every_frame_is_a_usage_error(video, trained_model_dir):
    r = run_cli("run", str(video), "--model", str(trained_model_dir), "--keyframes", "--every-frame", "5")
    assert r.returncode == 2
    assert "--keyframes" in r.stderr and "Traceback" not in r.stderr and r.stdout == ""


# ----------------------------------------------------------------------------- live sources
needs_rtsp = pytest.mark.skipif(rtsp_available() is not None, reason=str(rtsp_available()))


@pytest.fixture
def rtsp():
    server = RtspServer().start()
    yield server
    server.kill()


@pytest.mark.stream
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


@pytest.mark.stream
@needs_rtsp
def test_rtsp_tcp_option(rtsp, trained_model_dir):
    r = run_cli("run", rtsp.url, "--model", str(trained_model_dir), "--max-frames", "2", "--every", "0.1",
                "--rtsp-tcp", timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(read_csv(r.stdout)) == 2


@pytest.mark.stream
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


@pytest.mark.stream
@needs_rtsp
def test_reconnects_when_server_comes_back(trained_model_dir, tmp_path):
    server = RtspServer().start()
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "-m", "edgeclass", "run", server.url, "--model", str(trained_model_dir),
                             "-o", str(out), "--every", "0.2", "--read-timeout", "2", "--open-timeout", "3",
                             "--reconnects", "5", "--max-frames", "30"], stdout=subprocess.PIPE,
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
    # frames after the reconnect too (30 rows need 6 s of stream: far more than the pipeline
    # holds in flight when the server is killed after the first rows are on disk)
    assert len(ok) == 30
    assert proc.returncode == 0, err


@pytest.mark.stream
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


@pytest.mark.stream
def test_mjpeg_over_http(trained_model_dir):
    with mjpeg_server() as url:
        r = run_cli("run", url, "--model", str(trained_model_dir), "--max-frames", "3", "--every", "0.1", timeout=60)
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    assert len(rows) == 3 and all(row["status"] == "ok" and row["source"] == url for row in rows)


# ----------------------------------------------------------------------------- live: flood, death, freeze, HLS
def _live_rows(rows, url):
    return [row for row in rows if row["source"] == url]


@pytest.mark.stream
def test_one_camera_floods_one_dies(tmp_path, trained_model_dir):
    """A flooding camera cannot push out another camera's frames or its final status row; the
    dead camera's rows are exact, --max-frames counts rows written, and the exit code is 1."""
    dying_frame = mjpeg_frame(3)
    ref = tmp_path / "dying_frame.jpg"
    ref.write_bytes(dying_frame)
    health_json = tmp_path / "run.json"
    with mjpeg_server(fps=None, frames=10**7) as flood, \
            mjpeg_server(fps=10, frames=1, frame_at=lambda i: dying_frame, connections=1) as dying:
        r = run_cli("run", flood, dying, str(ref), "--model", str(trained_model_dir), "--every", "0.001",
                    "--max-frames", "40", "--reconnects", "0", "--summary-json", str(health_json), timeout=120)
    assert r.returncode == 1, r.stderr
    rows = read_csv(r.stdout)
    flood_rows, dead_rows = _live_rows(rows, flood), _live_rows(rows, dying)
    assert len(rows) == len(flood_rows) + len(dead_rows) + 1
    assert [row["status"] for row in flood_rows] == ["ok"] * 40  # exactly --max-frames rows
    frames = [int(row["frame"]) for row in flood_rows]
    assert frames == sorted(set(frames))  # newest kept, in order; gaps are dropped stale frames
    assert [(row["frame"], row["status"]) for row in dead_rows] == [("0", "ok"), ("", "eof")]
    assert "gave up after 0 reconnect attempts" in dead_rows[1]["error"]
    image_row = next(row for row in rows if row["source"] == str(ref))
    assert dead_rows[0]["top1_label"] == image_row["top1_label"]  # the camera's picture, classified
    assert float(dead_rows[0]["top1_score"]) == pytest.approx(float(image_row["top1_score"]), abs=0.05)
    health = json.loads(health_json.read_text())["health"]
    assert health[flood]["rows"] == 40 and health[flood]["state"] == "finished"
    assert health[flood]["frames_read"] >= health[flood]["frames_sampled"] >= 40 + health[flood]["dropped"]
    assert health[dying]["rows"] == 1 and health[dying]["state"] == "failed" and health[dying]["frames_read"] == 1
    assert health[dying]["last_frame_age_s"] >= 0


@pytest.mark.stream
def test_frozen_stream_is_a_status(tmp_path, trained_model_dir):
    """A camera repeating one picture gets one `frozen` row and is not classified meanwhile; a
    moving camera in the same run gets none."""
    health_json = tmp_path / "run.json"
    # 25 fps: FFmpeg times MJPEG (no timestamps of its own) at 25 fps, so media time keeps up with --duration
    with mjpeg_server(fps=25, frame_at=lambda i: mjpeg_frame(min(i, 3))) as frozen, \
            mjpeg_server(fps=25) as moving:
        r = run_cli("run", frozen, moving, "--model", str(trained_model_dir), "--every", "0.1", "--frozen-after", "1",
                    "--duration", "3", "--summary-json", str(health_json), timeout=120)
    assert r.returncode == 1, r.stderr
    rows = read_csv(r.stdout)
    statuses = [row["status"] for row in _live_rows(rows, frozen)]
    assert statuses[-1] == "frozen" and statuses[:-1] == ["ok"] * (len(statuses) - 1) and len(statuses) >= 5
    assert _live_rows(rows, frozen)[-1]["error"] == "same picture for 1s"
    assert {row["status"] for row in _live_rows(rows, moving)} == {"ok"} and len(_live_rows(rows, moving)) >= 10
    health = json.loads(health_json.read_text())["health"]
    assert (health[frozen]["frozen"], health[moving]["frozen"]) == (1, 0)
    assert health[frozen]["frames_sampled"] > health[frozen]["rows"] == len(statuses) - 1  # frozen: not classified


@pytest.mark.stream
def test_live_hls_from_a_local_server(tmp_path, trained_model_dir):
    """HLS as encoders publish it (FFmpeg-written segments, a playlist that grows with the clock),
    sampled by the stream's own timestamps, every frame the image it shows."""
    import train_test_model

    picture = cv2.cvtColor(train_test_model.make_image(0, np.random.default_rng(11), (240, 320)), cv2.COLOR_RGB2BGR)
    ref = tmp_path / "picture.png"
    cv2.imwrite(str(ref), picture)
    write_hls(tmp_path / "hls", (picture for _ in range(100)), fps=10, segment_s=1)
    with live_hls_server(tmp_path / "hls") as url:
        r = run_cli("run", url, str(ref), "--model", str(trained_model_dir), "--every", "1", "--max-frames", "3",
                    timeout=120)
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    hls = _live_rows(rows, url)
    image_row = next(row for row in rows if row["source"] == str(ref))
    assert [row["frame"] for row in hls] == ["0", "1", "2"]
    assert all(row["status"] == "ok" and row["top1_label"] == image_row["top1_label"] for row in hls)
    ts = [float(row["timestamp_ms"]) for row in hls]
    assert [b - a for a, b in zip(ts, ts[1:])] == [pytest.approx(1000, abs=100)] * 2  # media time, not arrival


_DECODER_THREADS_PROBE = """
import itertools, json, os, sys
from edgeclass.media.video import VideoOptions
from edgeclass.media.video.reader import AvReader

def started(options):
    before = len(os.listdir("/proc/self/task"))
    with AvReader(sys.argv[1], options, live=False) as reader:
        for frame in itertools.islice(reader.frames(), 30):
            frame.pixels()()
        during = len(os.listdir("/proc/self/task"))
    return during - before

print(json.dumps({"default": started(VideoOptions(every_frame=1)),
                  "one": started(VideoOptions(every_frame=1, decoder_threads=1))}))
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="FFmpeg starts no extra decoder threads on one CPU")
def test_threads_caps_ffmpeg_decoder_threads(coded):
    """`run --threads 1` (VideoOptions.decoder_threads=1) decodes and converts colours in the
    calling thread; by default FFmpeg (decoder and swscale) starts its own threads. Counted in
    a fresh process (threads it gains while decoding 30 frames), so no other test's threads count."""
    proc = subprocess.run([sys.executable, "-c", _DECODER_THREADS_PROBE, str(coded)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    started = json.loads(proc.stdout.strip().splitlines()[-1])
    assert started["default"] >= 1 and started["one"] == 0, started
