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
  samples. Per sample: seek to the key frame at or before its time, demux (no decoding) to the
  first key packet at or after it, decode that packet alone. A seek is trusted only when the
  first packet it lands on cannot be after the wanted key frame (MPEG-TS seeks by decoding
  time, not to key frames); else it seeks further back, at last to the beginning. A failed
  seek or an undecodable key packet falls back to the key-frame scan.

A sample is the first frame whose media time is at or after ``k * --every`` (or frame
``k * --every-frame``). Rows carry the frame's index (counted when decoding sequentially,
computed from its timestamp and the frame rate when seeking: the same for constant frame
rates) and its media time in milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

from edgeclass.media.decode import ImageReadError, prepare_array
from edgeclass.media.inputs import Source
from edgeclass.media.preprocess import PreprocessConfig, reduction_factor
from edgeclass.media.video.options import VideoOptions
from edgeclass.media.video.reader import AvReader, Frame, ReadFailure, estimate_gop
from edgeclass.results import Status, WorkItem

EPS_S = 1e-6
MAX_RESEEKS = 3  # seeks landing after their target (a poor index) before the file gets a stream_error row


@dataclass(frozen=True)
class Sample:
    index: int
    time_s: float
    frame: Frame


def failure_item(source: str, status: Status, message: str, frame: int | None = None,
                 ts_ms: float | None = None) -> WorkItem:
    def fail():
        raise ImageReadError(status, message)

    return WorkItem(source, fail, frame, ts_ms)


def model_input(pixels, pp: PreprocessConfig) -> np.ndarray:
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


def _index(t: float, fps: float | None) -> int:
    return int(round(t * fps)) if fps else 0


def sequential_samples(reader: AvReader, options: VideoOptions, stop: threading.Event,
                       start_s: float = 0.0, end_s: float | None = None) -> Iterator[Sample]:
    """Every frame decoded, sampled ones yielded (also the key-frame mode: the decoder then
    only returns key frames). Frames are counted from the start of the file; when reading a
    range (``start_s`` > 0, after a seek) or key frames, indices come from timestamps."""
    fps = reader.fps
    from_time = options.keyframes or start_s > 0
    step = options.interval_s
    next_t = _first_target(start_s, step)
    for n, frame in enumerate(reader.frames()):
        if stop.is_set():
            return
        t = frame.time_s if frame.time_s is not None else (n / fps if fps else 0.0)
        if t + EPS_S < start_s:
            continue
        if end_s is not None and t + EPS_S >= end_s:
            return
        index = _index(t, fps) if from_time else n
        if options.every_frame:
            take = index % options.every_frame == 0
        else:
            take = t + EPS_S >= next_t
            while next_t <= t + EPS_S:
                next_t += step
        if take:
            yield Sample(index, t, frame)


def _first_target(start_s: float, step: float) -> float:
    k = max(0, int(start_s / step))
    while k * step + EPS_S < start_s:
        k += 1
    return k * step


def seek_samples(reader: AvReader, options: VideoOptions, stop: threading.Event, gop_s: float,
                 start_s: float = 0.0, end_s: float | None = None) -> Iterator[Sample]:
    """Seek to the key frame before each target, decode forward to it; targets in
    [``start_s``, ``end_s``)."""
    fps = reader.fps
    if options.every_frame:
        k = -(-int(round(start_s * fps)) // options.every_frame)
    else:
        k = int(round(_first_target(start_s, options.interval_s) / options.interval_s))
    frames = None
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
                sample, frames = _seek_to(reader, target_t, target_index, gop_s)
            else:  # the target is within reach: decode forward
                sample = _advance(frames, target_t, target_index, fps)
            if sample is None or (end_s is not None and sample.time_s + EPS_S >= end_s):
                return
            last_t = sample.time_s
            yield sample
            k = _next_k(k, sample, options, fps)
    finally:
        if frames is not None:
            frames.close()


def _next_k(k: int, sample: Sample, options: VideoOptions, fps: float) -> int:
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
        index = _index(frame.time_s, fps)
        if _reached(frame.time_s, index, target_t, target_index):
            return Sample(index, frame.time_s, frame)
    return None


def _seek_to(reader: AvReader, target_t: float, target_index: int | None, gop_s: float):
    """(sample, frames iterator) for the first frame at or after the target, seeking back
    further when a seek lands after it."""
    fps = reader.fps
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
            index = _index(first_t, fps)
            if _reached(first_t, index, target_t, target_index):
                return Sample(index, first_t, first), frames
            return _advance(frames, target_t, target_index, fps), frames
        frames.close()
        back = back * 2 + gop_s
    raise ReadFailure(Status.STREAM_ERROR, f"cannot seek to {target_t:.3f}s")


BEGINNING_S = -1e9  # a media time before any stream's start: seeking there lands on the first packet
REORDER_FRAMES = 4  # frames an open GOP may show before its key frame (leading pictures)


class _Fallback(Exception):
    """Seeking or decoding a lone key packet failed: scan the key frames instead."""


class KeyPackets:
    """Key packets of an open file found by demuxing alone; only the chosen ones are decoded.

    The demux position only moves forward between seeks, and a seek is kept only when it
    provably lands before the key frame it is for (:meth:`_landed_before`)."""

    def __init__(self, reader: AvReader, gop_s: float):
        import av

        self._error = av.error.FFmpegError
        self.reader = reader
        self.gop_s = gop_s
        self.margin_s = REORDER_FRAMES / reader.fps if reader.fps else 0.2
        self.sws_threads = 1 if reader.options.decoder_threads else 0  # as AvReader.frames
        self._packets = reader.container.demux(reader.stream)  # from the start of the file
        self._pending = None  # the first packet after a seek, looked at but not consumed
        self.last_s = 0.0  # the position is before every frame at or after this time

    def time_s(self, pts: int) -> float:
        return pts * self.reader.time_base - self.reader.start_s  # as AvReader.frames

    def first_at_or_after(self, target_s: float) -> Sample | None:
        """The first key frame at or after ``target_s``, decoded; None past the last one."""
        if target_s - self.last_s > self.gop_s:
            self._seek(target_s)
        for packet in self._demux():
            if packet.is_keyframe and packet.pts is not None and self.time_s(packet.pts) + EPS_S >= target_s:
                frame = self._decode(packet)
                self.last_s = frame.time_s
                return Sample(_index(frame.time_s, self.reader.fps), frame.time_s, frame)
        return None

    def _demux(self) -> Iterator:
        try:
            if self._pending is not None:
                packet, self._pending = self._pending, None
                yield packet
            for packet in self._packets:
                yield packet
        except EOFError:
            return
        except self._error as exc:  # the scan meets the same data and gives it its status
            raise _Fallback(str(exc)) from None

    def _seek(self, target_s: float) -> None:
        """Position before the first key frame at or after ``target_s``: at the key frame
        before it, or (when a seek lands too late) one, three GOPs earlier, then the start. The
        first seek aims a little early: MPEG-TS lands on the packet decoded at the time asked."""
        for back in (2 * self.margin_s, self.gop_s, 3 * self.gop_s, None):
            at = BEGINNING_S if back is None else target_s - back
            if not self.reader.seek(at):
                raise _Fallback("seek failed")
            self._packets.close()
            self._packets = self.reader.container.demux(self.reader.stream)
            self._pending = None
            self._pending = next((p for p in self._demux() if p.pts is not None), None)
            if back is None or self._pending is None or self._landed_before(self._pending, target_s):
                self.last_s = target_s
                return

    def _landed_before(self, first, target_s: float) -> bool:
        """No key frame at or after ``target_s`` lies before ``first`` in decoding order: it is
        a key frame not after the target (earlier key frames show earlier), or any frame well
        before the target (its GOP's key frame shows before it, or, open GOPs, a few frames
        after)."""
        t = self.time_s(first.pts)
        if first.is_keyframe:
            return t <= target_s + EPS_S
        return t + EPS_S < target_s - self.margin_s

    def _decode(self, packet) -> Frame:
        """A key packet decoded alone (drained: decoders with B-frames hold their output)."""
        ctx = self.reader.stream.codec_context
        try:
            ctx.flush_buffers()
            frames = ctx.decode(packet) or ctx.decode(None)
        except self._error as exc:
            raise _Fallback(str(exc)) from None
        frames = [f for f in frames if f.pts is not None]
        if not frames:
            raise _Fallback("key packet gave no frame")
        f = frames[0]
        return Frame(self.time_s(f.pts), f.key_frame, av_frame=f, sws_threads=self.sws_threads)

    def rewind_for_scan(self) -> None:
        """Ready the reader for the key-frame scan: decoder reset, at the start if possible
        (else where the demuxing stopped)."""
        self.reader.stream.codec_context.flush_buffers()
        self._packets.close()
        self.reader.seek(BEGINNING_S)


def keyframe_seek_samples(reader: AvReader, options: VideoOptions, stop: threading.Event, gop_s: float,
                          start_s: float = 0.0, end_s: float | None = None) -> Iterator[Sample]:
    """The samples of :func:`sequential_samples` in key-frame mode (the first key frame at or
    after each target in [``start_s``, ``end_s``)), one key packet decoded per sample."""
    step = options.interval_s
    k = round(_first_target(start_s, step) / step)
    keys = KeyPackets(reader, gop_s)
    while not stop.is_set():
        target_s = k * step
        if end_s is not None and target_s + EPS_S >= end_s:
            return
        try:
            sample = keys.first_at_or_after(target_s)
        except _Fallback:
            keys.rewind_for_scan()
            yield from sequential_samples(reader, options, stop, target_s, end_s)
            return
        if sample is None or (end_s is not None and sample.time_s + EPS_S >= end_s):
            return
        yield sample
        k = _next_k(k, sample, options, reader.fps)


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
        return mode, keyframe_seek_samples(reader, options, stop, gop_s, start_s, end_s)
    if mode == "seek":  # no frame threads: their pipeline delay is decoded again after every seek
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
