"""Key frames of a video file at the cost of the samples: found by demuxing alone, one key
packet decoded per sample (``--keyframes`` with ``--every`` at least one GOP).

:class:`KeyPackets` reads one open file; :class:`KeyLane` reads every other sample's key frame
on a second reader of the same file, in a thread of its own, so that the seek-and-decode of
consecutive samples (PyAV releases the GIL while demuxing and decoding) overlap on two cores.
"""

from __future__ import annotations

import enum
import os
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, Final, Literal, cast

from edgeclass.media.video.options import VideoOptions
from edgeclass.media.video.reader import AvReader, Frame
from edgeclass.media.video.samples import EPS_S, Sample, frame_index

BEGINNING_S = -1e9  # a media time before any stream's start: seeking there lands on the first packet
REORDER_FRAMES = 4  # frames an open GOP may show before its key frame (leading pictures)


class SeekFallback(Exception):
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
        assert reader.time_base is not None  # a GOP was measured (estimate_gop): the stream has a time base
        self.time_base: float = reader.time_base
        self._packets = self._demux_from_here()  # from the start of the file
        self._pending = None  # the first packet after a seek, looked at but not consumed
        self.last_s = 0.0  # the position is before every frame at or after this time

    def time_s(self, pts: int) -> float:
        return pts * self.time_base - self.reader.start_s  # as AvReader.frames

    def _demux_from_here(self) -> Generator[Any, None, None]:
        # PyAV's stub says Iterator; demux gives a generator, closed on every seek
        return cast("Generator[Any, None, None]", self.reader.container.demux(self.reader.stream))

    def first_at_or_after(self, target_s: float) -> Sample | None:
        """The first key frame at or after ``target_s``, decoded; None past the last one."""
        if target_s - self.last_s > self.gop_s:
            self._seek(target_s)
        for packet in self._demux():
            if packet.is_keyframe and packet.pts is not None and self.time_s(packet.pts) + EPS_S >= target_s:
                sample = self._decode(packet)
                self.last_s = sample.time_s
                return sample
        return None

    def _demux(self) -> Iterator[Any]:
        try:
            if self._pending is not None:
                packet, self._pending = self._pending, None
                yield packet
            for packet in self._packets:
                yield packet
        except EOFError:
            return
        except self._error as exc:  # the scan meets the same data and gives it its status
            raise SeekFallback(str(exc)) from None

    def _seek(self, target_s: float) -> None:
        """Position before the first key frame at or after ``target_s``: at the key frame
        before it, or (when a seek lands too late) one, three GOPs earlier, then the start. The
        first seek aims a little early: MPEG-TS lands on the packet decoded at the time asked."""
        for back in (2 * self.margin_s, self.gop_s, 3 * self.gop_s, None):
            at = BEGINNING_S if back is None else target_s - back
            if not self.reader.seek(at):
                raise SeekFallback("seek failed")
            self._packets.close()
            self._packets = self._demux_from_here()
            self._pending = None
            self._pending = next((p for p in self._demux() if p.pts is not None), None)
            if back is None or self._pending is None or self._landed_before(self._pending, target_s):
                self.last_s = target_s
                return

    def _landed_before(self, first: Any, target_s: float) -> bool:  # first: an av.Packet
        """No key frame at or after ``target_s`` lies before ``first`` in decoding order: it is
        a key frame not after the target (earlier key frames show earlier), or any frame well
        before the target (its GOP's key frame shows before it, or, open GOPs, a few frames
        after)."""
        t = self.time_s(first.pts)
        if first.is_keyframe:
            return t <= target_s + EPS_S
        return t + EPS_S < target_s - self.margin_s

    def _decode(self, packet: Any) -> Sample:  # packet: an av.Packet
        """A key packet decoded alone (drained: decoders with B-frames hold their output)."""
        ctx = self.reader.stream.codec_context
        try:
            ctx.flush_buffers()
            frames = ctx.decode(packet) or ctx.decode(None)
        except self._error as exc:
            raise SeekFallback(str(exc)) from None
        stamped = [(f.pts, f) for f in frames if f.pts is not None]
        if not stamped:
            raise SeekFallback("key packet gave no frame")
        pts, f = stamped[0]
        t = self.time_s(pts)
        return Sample(frame_index(t, self.reader.fps), t,
                      Frame(t, f.key_frame, av_frame=f, sws_threads=self.sws_threads))

    def rewind_for_scan(self) -> None:
        """Ready the reader for the key-frame scan: decoder reset, at the start if possible
        (else where the demuxing stopped)."""
        self.reader.stream.codec_context.flush_buffers()
        self._packets.close()
        self.reader.seek(BEGINNING_S)


class _Mark(enum.Enum):
    MISSING = "missing"
    FAILED = "failed"


MISSING: Final = _Mark.MISSING  # KeyLane.take: the lane has no answer for this target: read it yourself
_FAILED: Final = _Mark.FAILED
LaneAnswer = Sample | None | Literal[_Mark.MISSING]  # KeyLane.take: None is past the last key frame
MIN_LANE_SAMPLES = 6  # fewer samples than this: a second reader costs more than it saves


class KeyLane:
    """The samples of the targets ``k = first, first + 2, ...`` (times ``k * step``), read ahead
    on a second reader of the file in a thread of its own, two at most waiting. The caller reads
    the other targets and takes these in order (:meth:`take`); the lane stops at its first
    failure of any kind, and the caller then reads the remaining targets itself."""

    def __init__(self, path: str, options: VideoOptions, gop_s: float, step: float, first: int,
                 end_s: float | None):
        self.path, self.options, self.gop_s, self.step, self.end_s = path, options, gop_s, step, end_s
        self._results: queue.Queue[tuple[int, Sample | None | _Mark]] = queue.Queue(maxsize=2)
        self._closed = threading.Event()
        self._head: tuple[int, Sample | None | _Mark] | None = None  # (k, a sample, None or _FAILED)
        self._failed = False
        self._thread = threading.Thread(target=self._work, args=(first,), name="edgeclass-keylane", daemon=True)
        self._thread.start()

    def _work(self, k: int) -> None:
        try:
            with AvReader(self.path, self.options, live=False) as reader:
                keys = KeyPackets(reader, self.gop_s)
                while not self._closed.is_set():
                    target_s = k * self.step
                    if self.end_s is not None and target_s + EPS_S >= self.end_s:
                        return
                    sample = keys.first_at_or_after(target_s)
                    if not self._put((k, sample)) or sample is None:
                        return
                    k += 2
                    while k * self.step <= sample.time_s + EPS_S:  # targets this key frame covers
                        k += 2
        except Exception:  # noqa: BLE001 - whatever it is, the caller meets it again on its own reader
            self._put((k, _FAILED))

    def _put(self, item: tuple[int, Sample | None | _Mark]) -> bool:
        while not self._closed.is_set():
            try:
                self._results.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self, k: int) -> LaneAnswer:
        """The lane's sample for target ``k`` (None: no key frame at or after it), or
        :data:`MISSING` when the caller must read it itself."""
        while not self._failed:
            if self._head is None:
                if not self._thread.is_alive() and self._results.empty():
                    return MISSING  # the lane ended before this target (end_s, or closed)
                try:
                    self._head = self._results.get(timeout=0.1)
                except queue.Empty:
                    continue
            lane_k, value = self._head
            if lane_k < k:  # a target the caller skipped (an earlier sample covered it)
                self._head = None
                continue
            if lane_k > k or value is _FAILED:
                self._failed = value is _FAILED
                return MISSING
            self._head = None
            return value
        return MISSING

    def close(self) -> None:
        self._closed.set()
        self._thread.join()


def start_lane(reader: AvReader, options: VideoOptions, gop_s: float, step: float, first: int,
               end_s: float | None) -> KeyLane | None:
    """A lane for the odd-numbered samples when it pays: two cores or more allowed (``run
    --threads 1`` keeps to one), and at least :data:`MIN_LANE_SAMPLES` samples."""
    if options.decoder_threads == 1 or len(os.sched_getaffinity(0)) < 2:
        return None
    end = end_s if end_s is not None else reader.duration_s
    if end is None or (end - first * step) / step < MIN_LANE_SAMPLES:
        return None
    return KeyLane(reader.path, options, gop_s, step, first + 1, end_s)
