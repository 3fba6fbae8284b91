"""`--keyframes` on video files: with ``--every`` at least one GOP, one key packet is decoded per
sample (seek, demux to the key packet, decode it alone); below one GOP every key frame is
decoded. Either way the rows are the first key frames at or after each sample time, with the
frame numbers and media times a full decode gives them.

Real files made here with x264 (frames carry their index as a barcode, GOP 1 s, B-frames): MP4
(indexed) and MPEG-TS (no index: seeks land by decoding time, on any packet)."""

from __future__ import annotations

import threading
from fractions import Fraction

import cv2
import numpy as np
import pytest

from conftest import read_csv, run_cli
from streams import coded_frame, encode_video, read_code

FPS, GOP, N = 25, 25, 150  # 6 s, key frames every 1 s at frames 0, 25, ..., 125
EVERY = [0.4, 0.96, 1.0, 1.04, 1.5, 2.0, 2.2, 2.48, 2.75, 4.4, 7.0]  # below, at and above one GOP


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("keyframes")
    frames = [coded_frame(i) for i in range(N)]
    return {"mp4": encode_video(root / "coded.mp4", frames, FPS, GOP),
            "ts": encode_video(root / "coded.ts", frames, FPS, GOP, fmt="mpegts")}


def full_decode(path) -> list[tuple[int, float, bool]]:
    """(index in presentation order, media time in s, key frame) of every frame: the reference."""
    import av

    with av.open(str(path)) as container:
        s = container.streams.video[0]
        start = s.start_time * s.time_base
        return [(n, float(f.pts * s.time_base - start), f.key_frame) for n, f in enumerate(container.decode(s))]


def first_keys_after(frames, every: float, start_s: float = 0.0, end_s: float | None = None):
    """(index, time) of the first key frame at or after each multiple of ``every`` in the span,
    each key frame once."""
    keys = [(n, t) for n, t, key in frames if key]
    out, k = [], int(round(start_s / every))
    while end_s is None or k * every < end_s - 1e-9:
        hit = next(((n, t) for n, t in keys if t + 1e-6 >= k * every), None)
        if hit is None or (end_s is not None and hit[1] >= end_s - 1e-9):
            break
        if hit not in out:
            out.append(hit)
        k += 1
    return out


def sampled(path, every: float, start_s: float = 0.0, end_s: float | None = None, scan: bool = False):
    """(mode, [(frame, timestamp_ms, barcode in the pixels)]) as edgeclass reads the file."""
    from edgeclass.media.video import VideoOptions
    from edgeclass.media.video.files import plan, sequential_samples
    from edgeclass.media.video.reader import AvReader

    options = VideoOptions(every_s=every, keyframes=True)
    with AvReader(str(path), options, live=False) as reader:
        if scan:  # the key-frame scan from the start (every key frame decoded), for comparison
            mode, samples = "keyframes", sequential_samples(reader, options, threading.Event(), start_s, end_s)
        else:
            mode, samples = plan(reader, options, threading.Event(), start_s, end_s)
        rows = [(s.index, round(s.time_s * 1000, 1), read_code(s.frame.pixels()())) for s in samples]
    return mode, rows


@pytest.mark.parametrize("fmt", ["mp4", "ts"])
@pytest.mark.parametrize("every", EVERY)
def test_keyframe_rows_are_the_first_key_frames_after_each_time(files, fmt, every):
    reference = full_decode(files[fmt])
    assert [n for n, _, key in reference if key] == list(range(0, N, GOP))  # the fixture's GOP
    expected = first_keys_after(reference, every)
    mode, rows = sampled(files[fmt], every)
    assert mode == ("keyframe-seek" if every >= GOP / FPS else "keyframes")
    assert [r[0] for r in rows] == [n for n, _ in expected]  # frame numbers of a full decode
    assert [r[1] for r in rows] == [n * 40.0 for n, _ in expected]  # its media times (40 ms a frame)
    assert [r[2] for r in rows] == [n for n, _ in expected]  # and the pixels are that frame


@pytest.mark.parametrize("fmt", ["mp4", "ts"])
def test_one_key_packet_decoded_per_sample(files, fmt, monkeypatch):
    """The point of the mode: no scan, one decode per row (the only decodes: each a lone key packet)."""
    from edgeclass.media.video.files import KeyPackets

    decoded, rewound = [], []
    real_decode = KeyPackets._decode
    monkeypatch.setattr(KeyPackets, "_decode", lambda self, p: decoded.append(p.pts) or real_decode(self, p))
    monkeypatch.setattr(KeyPackets, "rewind_for_scan", lambda self: rewound.append(1))
    for every in (1.0, 2.2, 4.4):
        decoded.clear()
        mode, rows = sampled(files[fmt], every)
        assert mode == "keyframe-seek" and not rewound
        assert len(decoded) == len(rows) == len(first_keys_after(full_decode(files[fmt]), every))


@pytest.mark.parametrize("fmt", ["mp4", "ts"])
def test_a_second_reader_takes_every_other_sample_and_the_rows_stay_the_same(files, fmt, monkeypatch):
    """Long files read every other sample on a second reader (KeyLane, its own thread): the
    rows are those of one reader, each key frame decoded once, and both readers decoded some.
    (The fixture is short: the lane's minimum number of samples is lowered to 1 here.)"""
    from edgeclass.media.video import keyseek
    from edgeclass.media.video.files import KeyPackets

    monkeypatch.setattr(keyseek, "MIN_LANE_SAMPLES", 1)
    threads = []
    real_decode = KeyPackets._decode
    monkeypatch.setattr(KeyPackets, "_decode",
                        lambda self, p: threads.append(threading.current_thread().name) or real_decode(self, p))
    reference = full_decode(files[fmt])
    for every in [e for e in EVERY if e >= GOP / FPS]:
        threads.clear()
        expected = first_keys_after(reference, every)
        mode, rows = sampled(files[fmt], every)
        assert mode == "keyframe-seek"
        assert [(r[0], r[2]) for r in rows] == [(n, n) for n, _ in expected], every
        assert len(threads) == len(rows)
        if len(rows) > 1:
            assert "edgeclass-keylane" in threads and threading.current_thread().name in threads
    assert not [t for t in threading.enumerate() if t.name == "edgeclass-keylane"]  # every lane closed


def test_mpegts_fixture_has_no_index(files):
    import av

    with av.open(str(files["ts"])) as c:
        assert len(c.streams.video[0].index_entries) == 0
    with av.open(str(files["mp4"])) as c:
        assert len(c.streams.video[0].index_entries) == N


@pytest.mark.parametrize("fmt", ["mp4", "ts"])
def test_file_items_rows(files, fmt):
    """The rows' frame and timestamp_ms columns, and the model input is the frame they name."""
    from edgeclass.media.inputs import Source
    from edgeclass.media.preprocess import PreprocessConfig
    from edgeclass.media.video import VideoOptions, file_items

    pp = PreprocessConfig(input_size=(64, 64), crop_pct=1.0)
    completed: set[str] = set()
    items = list(file_items(Source(str(files[fmt]), "video"), pp, VideoOptions(every_s=2.2, keyframes=True),
                            threading.Event(), completed))
    assert [(it.frame, it.timestamp_ms) for it in items] == [(0, 0.0), (75, 3000.0), (125, 5000.0)]
    assert all(it.load().shape[:2] == (64, 64) for it in items)
    assert completed == {str(files[fmt])}


@pytest.mark.parametrize("fmt", ["mp4", "ts"])
@pytest.mark.parametrize("every", [1.2, 2.4])
def test_ranges_give_the_rows_of_the_whole_file(files, fmt, every):
    """Pieces of a file (another box's share) give the whole file's rows, as the scan does."""
    reference = full_decode(files[fmt])
    spans = [(0.0, 2 * every), (2 * every, 4 * every), (4 * every, None)]
    pieces = [row for a, b in spans for row in sampled(files[fmt], every, a, b)[1]]
    assert pieces == sampled(files[fmt], every)[1]
    assert pieces == [row for a, b in spans for row in sampled(files[fmt], every, a, b, scan=True)[1]]
    assert [r[0] for r in pieces] == [n for n, _ in first_keys_after(reference, every)]


@pytest.mark.parametrize("min_lane_samples", [6, 1])
def test_a_failed_seek_falls_back_to_the_scan(files, monkeypatch, min_lane_samples):
    """FFmpeg refusing to seek (fault injected at the reader's seek): the key-frame scan takes
    over where the demuxing stopped, same rows."""
    from edgeclass.media.video import keyseek
    from edgeclass.media.video.reader import AvReader

    monkeypatch.setattr(keyseek, "MIN_LANE_SAMPLES", min_lane_samples)  # 1: with a second reader too
    calls = []
    monkeypatch.setattr(AvReader, "seek", lambda self, t: calls.append(t) or False)
    for fmt in ("mp4", "ts"):
        calls.clear()
        mode, rows = sampled(files[fmt], 2.2)
        assert mode == "keyframe-seek" and calls  # it tried
        assert [r[0] for r in rows] == [r[2] for r in rows] == [0, 75, 125]


@pytest.mark.parametrize("min_lane_samples", [6, 1])
def test_seeks_that_land_late_are_redone_earlier(files, monkeypatch, min_lane_samples):
    """A seek landing after the key frame it is for (as MPEG-TS seeks can) is redone further
    back, not taken: seeks forced to land 2.5 s (two GOPs and more) late still give the right
    rows (a landing on a key frame after the target is late too: an earlier one may qualify)."""
    from edgeclass.media.video import keyseek
    from edgeclass.media.video.reader import AvReader

    monkeypatch.setattr(keyseek, "MIN_LANE_SAMPLES", min_lane_samples)  # 1: with a second reader too
    real_seek = AvReader.seek
    monkeypatch.setattr(AvReader, "seek", lambda self, t: real_seek(self, t + 2.5 if t > -1e6 else t))
    for fmt in ("mp4", "ts"):
        expected = first_keys_after(full_decode(files[fmt]), 2.2)
        rows = sampled(files[fmt], 2.2)[1]
        assert [r[0] for r in rows] == [r[2] for r in rows] == [n for n, _ in expected]


def test_shorter_than_one_gop(tmp_path):
    """0.8 s, one key frame: one row (frame 0) whatever the interval."""
    path = encode_video(tmp_path / "short.mp4", (coded_frame(i) for i in range(20)), FPS, 50)
    for every, mode in ((1.0, "keyframes"), (15.0, "keyframe-seek")):  # GOP unknown: taken as 12 s
        assert sampled(path, every) == (mode, [(0, 0.0, 0)])


def vfr_video(path, n: int):
    """Frames 20, 40 and 100 ms apart in turn, a key frame every 25 frames (at uneven times)."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"g": "25", "keyint_min": "25", "sc_threshold": "0", "bf": "2", "crf": "12",
                     "preset": "veryfast"}
        t = 0
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(coded_frame(i), format="bgr24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            t += (20, 40, 100)[i % 3]
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    return path


def test_variable_frame_rate(tmp_path):
    """Media times are the frames' own; frame numbers come from the time and the average rate
    (as in the scan: a full decode counts otherwise at variable rates); the pixels are the key
    frame's."""
    import av

    path = vfr_video(tmp_path / "vfr.mp4", N)
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate)
    reference = full_decode(path)
    for every in (2.0, 3.0):
        expected = first_keys_after(reference, every)
        mode, rows = sampled(path, every)
        assert mode == "keyframe-seek"
        assert rows == sampled(path, every, scan=True)[1]
        assert [r[2] for r in rows] == [n for n, _ in expected]
        assert [r[1] for r in rows] == [round(t * 1000, 1) for _, t in expected]
        assert [r[0] for r in rows] == [round(t * rate) for _, t in expected]


@pytest.fixture(scope="module")
def class_videos(tmp_path_factory):
    """8 s at 25 fps, GOP 1 s: a class image per 2 s (circle, square, triangle, stripes), MP4 and TS."""
    import train_test_model

    rng = np.random.default_rng(11)
    images = [cv2.cvtColor(train_test_model.make_image(c, rng, (240, 320)), cv2.COLOR_RGB2BGR) for c in range(4)]
    root = tmp_path_factory.mktemp("keyframe_classes")
    return [encode_video(root / f"classes.{fmt}", (images[i // 50] for i in range(200)), FPS, GOP,
                         fmt="mpegts" if fmt == "ts" else None) for fmt in ("mp4", "ts")]


def test_cli_labels_are_those_of_the_same_frames_as_images(class_videos, trained_model_dir, tmp_path):
    """`run --keyframes --every 2.5`: rows for frames 0, 75, 125 (key frames at 0, 3, 5 s; none
    at or after 7.5 s), each with the label and scores `run` gives that frame as a PNG."""
    refs = {}  # (video, frame) -> PNG of that frame
    for v, video in enumerate(class_videos):
        for n, bgr in full_decode_frames(video, {0, 75, 125}):
            refs[str(video), n] = tmp_path / f"ref_{v}_{n}.png"
            cv2.imwrite(str(refs[str(video), n]), bgr)
    r = run_cli("run", *map(str, class_videos), *map(str, refs.values()), "--model", str(trained_model_dir),
                "--keyframes", "--every", "2.5", "--full-decode", "--top-k", "4")
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    by_png = {row["source"]: row for row in rows if row["source"].endswith(".png")}
    for video in class_videos:
        video_rows = [row for row in rows if row["source"] == str(video)]
        assert [(int(row["frame"]), float(row["timestamp_ms"])) for row in video_rows] == [
            (0, 0.0), (75, 3000.0), (125, 5000.0)]
        for row in video_rows:
            ref = by_png[str(refs[str(video), int(row["frame"])])]
            assert row["status"] == ref["status"] == "ok"
            assert row["top1_label"] == ref["top1_label"]
            scores = {row[f"top{k}_label"]: float(row[f"top{k}_score"]) for k in range(1, 5)}
            ref_scores = {ref[f"top{k}_label"]: float(ref[f"top{k}_score"]) for k in range(1, 5)}
            assert scores == pytest.approx(ref_scores, abs=1e-5)
        # different pictures (classes 0, 1, 2) score differently: a wrong frame would show
        top1 = [float(by_png[str(refs[str(video), n])]["top1_score"]) for n in (0, 75, 125)]
        assert len(set(top1)) == 3


def full_decode_frames(path, wanted: set[int]):
    """(index, BGR pixels) of the wanted frames, decoding front to back."""
    import av

    with av.open(str(path)) as container:
        for n, frame in enumerate(container.decode(video=0)):
            if n in wanted:
                yield n, frame.to_ndarray(format="bgr24")
