"""Video files as work items, at a cost that follows the samples, not the length.

Per file, from its GOP (key-frame spacing) and the sampling interval:

* **seek** (interval >= GOP): for each sample, seek to the key frame at or before its time and
  decode forward to the exact frame: about half a GOP of decoding per sample.
* **sequential** (interval < GOP): decode every frame (the codec needs them), convert only the
  sampled ones.
* **keyframes** (``--keyframes``, interval < GOP, or GOP unknown): the decoder skips
  everything but key frames; each sample is the first key frame at or after its time (times
  as they fall).
* **keyframe-seek** (``--keyframes``, interval >= GOP): the same frames at the cost of the
  samples (:mod:`edgeclass.media.video.keyseek`). Per sample: seek to the key frame at or before
  its time, demux (no decoding) to the first key packet at or after it, decode that packet
  alone; on long files every other sample is read by a second reader, in a thread of its own.
  A seek is trusted only when the first packet it lands on cannot be after the wanted key frame
  (MPEG-TS seeks by decoding time, not to key frames); else it seeks further back, at last to
  the beginning. A failed seek or an undecodable key packet falls back to the key-frame scan.

A sample is the first frame whose media time is at or after ``k * --every`` (or frame
``k * --every-frame``). Rows carry the frame's index (counted when decoding sequentially,
computed from its timestamp and the frame rate when seeking: the same for constant frame
rates) and its media time in milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from functools import partial
from typing import NoReturn

import numpy as np

from edgeclass.media.decode import ImageReadError, prepare_array
from edgeclass.media.inputs import Source
from edgeclass.media.preprocess import PreprocessConfig, reduction_factor
from edgeclass.media.video.options import VideoOptions
from edgeclass.media.video.keyseek import MISSING, KeyPackets, SeekFallback, start_lane
from edgeclass.media.video.reader import AvReader, Frame, ReadFailure, estimate_gop
from edgeclass.media.video.samples import EPS_S, Sample, first_target, frame_index
from edgeclass.results import Status, WorkItem

MAX_RESEEKS = 3  # seeks landing after their target (a poor index) before the file gets a stream_error row


def failure_item(source: str, status: Status, message: str, frame: int | None = None,
                 ts_ms: float | None = None) -> WorkItem:
    def fail() -> NoReturn:
        raise ImageReadError(status, message)

    return WorkItem(source, fail, frame, ts_ms)


def model_input(pixels: Callable[[], np.ndarray], pp: PreprocessConfig) -> np.ndarray:
    """A frame (BGR, as decoders give it, maybe converted at a reduced scale) through the one
    preprocessing path."""
    return prepare_array(pixels(), pp)


def frame_item(source: str, frame: Frame, pp: PreprocessConfig, options: VideoOptions, index: int,
               ts_ms: float) -> WorkItem:
    """A sampled frame as a work item; converted later, in the pipeline's workers."""
    size = frame.size
    factor = reduction_factor(*size, pp) if options.reduced and size else 1
    return WorkItem(source, partial(model_input, frame.pixels(factor), pp), index, round(ts_ms, 1))


def choose_mode(options: VideoOptions, fps: float | None, gop_s: float | None) -> str:
    """"keyframe-seek", "keyframes", "seek" or "sequential" for one file."""
    if options.keyframes:
        return "keyframe-seek" if gop_s is not None and options.interval_s >= gop_s else "keyframes"
    if gop_s is None or not fps:
        return "sequential"
    interval = options.every_frame / fps if options.every_frame else options.interval_s
    return "seek" if interval >= max(gop_s, 1.0 / fps) else "sequential"


def sequential_samples(reader: AvReader, options: VideoOptions, stop: threading.Event,
                       start_s: float = 0.0, end_s: float | None = None) -> Iterator[Sample]:
    """Every frame decoded, sampled ones yielded (also the key-frame mode: the decoder then
    only returns key frames). Frames are counted from the start of the file; when reading a
    range (``start_s`` > 0, after a seek) or key frames, indices come from timestamps."""
    fps = reader.fps
    from_time = options.keyframes or start_s > 0
    step = options.interval_s
    next_t = first_target(start_s, step)
    for n, frame in enumerate(reader.frames()):
        if stop.is_set():
            return
        t = frame.time_s if frame.time_s is not None else (n / fps if fps else 0.0)
        if t + EPS_S < start_s:
            continue
        if end_s is not None and t + EPS_S >= end_s:
            return
        index = frame_index(t, fps) if from_time else n
        if options.every_frame:
            take = index % options.every_frame == 0
        else:
            take = t + EPS_S >= next_t
            while next_t <= t + EPS_S:
                next_t += step
        if take:
            yield Sample(index, t, frame)


def seek_samples(reader: AvReader, options: VideoOptions, stop: threading.Event, gop_s: float,
                 start_s: float = 0.0, end_s: float | None = None) -> Iterator[Sample]:
    """Seek to the key frame before each target, decode forward to it; targets in
    [``start_s``, ``end_s``)."""
    fps = reader.fps
    assert fps, "seeking needs the frame rate (choose_mode)"
    if options.every_frame:
        k = -(-int(round(start_s * fps)) // options.every_frame)
    else:
        k = int(round(first_target(start_s, options.interval_s) / options.interval_s))
    frames: Generator[Frame, None, None] | None = None
    last_t = None
    try:
        while not stop.is_set():
            if options.every_frame:
                target_index = k * options.every_frame
                target_t = target_index / fps
            else:
                target_t = k * options.interval_s
                target_index = None
            if reader.duration_s is not None and target_t > reader.duration_s + EPS_S:
                return
            if end_s is not None and target_t + EPS_S >= end_s:
                return
            sample = None
            if frames is None or last_t is None or target_t - last_t > gop_s:
                sample, frames = _seek_to(reader, target_t, target_index, gop_s, fps)
            else:  # the target is within reach: decode forward
                sample = _advance(frames, target_t, target_index, fps)
            if sample is None or (end_s is not None and sample.time_s + EPS_S >= end_s):
                return
            last_t = sample.time_s
            yield sample
            k = _next_k(k, sample, options)
    finally:
        if frames is not None:
            frames.close()


def _next_k(k: int, sample: Sample, options: VideoOptions) -> int:
    """The next target after ``sample`` (skipping targets it already covers)."""
    k += 1
    if options.every_frame:
        while k * options.every_frame <= sample.index:
            k += 1
    else:
        while k * options.interval_s <= sample.time_s + EPS_S:
            k += 1
    return k


def _reached(frame_t: float, index: int, target_t: float, target_index: int | None) -> bool:
    return index >= target_index if target_index is not None else frame_t + EPS_S >= target_t


def _advance(frames: Iterator[Frame], target_t: float, target_index: int | None, fps: float) -> Sample | None:
    for frame in frames:
        if frame.time_s is None:
            continue
        index = frame_index(frame.time_s, fps)
        if _reached(frame.time_s, index, target_t, target_index):
            return Sample(index, frame.time_s, frame)
    return None


def _seek_to(reader: AvReader, target_t: float, target_index: int | None, gop_s: float,
             fps: float) -> tuple[Sample | None, Generator[Frame, None, None]]:
    """(sample, frames iterator) for the first frame at or after the target, seeking back
    further when a seek lands after it."""
    back = 0.0
    for _ in range(MAX_RESEEKS + 1):
        if not reader.seek(max(0.0, target_t - back)):
            raise ReadFailure(Status.STREAM_ERROR, "seek failed")
        frames = reader.frames()
        first = next(frames, None)
        if first is None:
            return None, frames
        first_t = first.time_s if first.time_s is not None else 0.0
        late = first_t > target_t + 0.5 / fps and target_t - back > 0
        if not late:
            index = frame_index(first_t, fps)
            if _reached(first_t, index, target_t, target_index):
                return Sample(index, first_t, first), frames
            return _advance(frames, target_t, target_index, fps), frames
        frames.close()
        back = back * 2 + gop_s
    raise ReadFailure(Status.STREAM_ERROR, f"cannot seek to {target_t:.3f}s")


def keyframe_seek_samples(reader: AvReader, options: VideoOptions, stop: threading.Event, gop_s: float,
                          start_s: float = 0.0, end_s: float | None = None) -> Iterator[Sample]:
    """The samples of :func:`sequential_samples` in key-frame mode (the first key frame at or
    after each target in [``start_s``, ``end_s``)), one key packet decoded per sample; every
    other sample read ahead on a second reader (:class:`KeyLane`) when the file is long enough."""
    step = options.interval_s
    first = k = round(first_target(start_s, step) / step)
    keys = KeyPackets(reader, gop_s)
    lane = start_lane(reader, options, gop_s, step, first, end_s)
    try:
        while not stop.is_set():
            target_s = k * step
            if end_s is not None and target_s + EPS_S >= end_s:
                return
            sample = lane.take(k) if lane is not None and (k - first) % 2 else MISSING
            try:
                if sample is MISSING:
                    sample = keys.first_at_or_after(target_s)
            except SeekFallback:
                keys.rewind_for_scan()
                yield from sequential_samples(reader, options, stop, target_s, end_s)
                return
            if sample is None or (end_s is not None and sample.time_s + EPS_S >= end_s):
                return
            yield sample
            k = _next_k(k, sample, options)
    finally:
        if lane is not None:
            lane.close()


def file_items(source: Source, pp: PreprocessConfig, options: VideoOptions, stop: threading.Event,
               completed: set[str]) -> Iterator[WorkItem]:
    """Sampled frames of a video file; marks the file completed when read to the end."""
    yield from _items(source.path, pp, options, stop, 0.0, None)
    if not stop.is_set():  # stopped: not completed, a resumed run redoes this file
        completed.add(source.path)


def range_items(source: Source, pp: PreprocessConfig, options: VideoOptions, start_ms: float,
                end_ms: float | None, stop: threading.Event | None = None) -> Iterator[WorkItem]:
    """The samples of a file whose media time is in [``start_ms``, ``end_ms``) (None: to the
    end): the same rows a whole-file run gives for that span when ``start_ms`` is a multiple of
    the sampling step (a piece of a video classified on another box)."""
    yield from _items(source.path, pp, options, stop or threading.Event(), start_ms / 1000.0,
                      None if end_ms is None else end_ms / 1000.0)


def duration_ms(path: str) -> float | None:
    """A video file's duration from its header, None when unknown or unreadable."""
    try:
        with AvReader(path, VideoOptions(), live=False) as reader:
            return None if reader.duration_s is None else reader.duration_s * 1000.0
    except ReadFailure:
        return None


def plan(reader: AvReader, options: VideoOptions, stop: threading.Event, start_s: float = 0.0,
         end_s: float | None = None) -> tuple[str, Iterator[Sample]]:
    """(mode, samples) for an open file: the cheapest way to the frames ``options`` asks for."""
    gop_s = estimate_gop(reader.path)
    mode = choose_mode(options, reader.fps, gop_s)
    if mode == "keyframe-seek":
        assert gop_s is not None  # choose_mode seeks only with a measured GOP
        return mode, keyframe_seek_samples(reader, options, stop, gop_s, start_s, end_s)
    if mode == "seek":  # no frame threads: their pipeline delay is decoded again after every seek
        assert gop_s is not None
        reader.stream.thread_type = "SLICE"  # less CPU than frame threads when seeking (benchmarks/video.py)
        return mode, seek_samples(reader, options, stop, gop_s, start_s, end_s)
    if start_s > 0 and not reader.seek(start_s):
        raise ReadFailure(Status.STREAM_ERROR, f"cannot seek to {start_s:.3f}s")
    return mode, sequential_samples(reader, options, stop, start_s, end_s)


def _items(path: str, pp: PreprocessConfig, options: VideoOptions, stop: threading.Event, start_s: float,
           end_s: float | None) -> Iterator[WorkItem]:
    try:
        reader = AvReader(path, options, live=False)
    except ReadFailure as exc:
        if start_s == 0:
            yield failure_item(path, exc.status, exc.message)
        return
    count = 0
    with reader:
        try:
            for s in plan(reader, options, stop, start_s, end_s)[1]:
                count += 1
                yield frame_item(path, s.frame, pp, options, s.index, s.time_s * 1000.0)
        except ReadFailure as exc:
            yield failure_item(path, exc.status, f"{exc.message} (after {count} frames)")
            return
    if count == 0 and start_s == 0 and not stop.is_set():
        yield failure_item(path, Status.CORRUPT, "video has no decodable frames")
