"""Video files and live sources (RTSP/HTTP streams, cameras) as work items for the pipeline.

Files are read in order, sampled by media time (``--every``) or frame count
(``--every-frame``); unsampled frames are only ``grab()``-ed, never converted.

Live sources each get a reader thread that reads continuously (so the decoder never lags),
keeps only the newest sampled frame when inference falls behind (stale frames are dropped,
never buffered), reconnects with exponential backoff after a drop, and is watched: a read that
hangs past the read timeout is abandoned and the source reconnected. One dead camera only
ever produces rows about itself.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from edgeclass.media.decode import ImageReadError, prepare_array
from edgeclass.media.inputs import Source
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.results import Status, WorkItem


@dataclass(frozen=True)
class VideoOptions:
    every_s: float | None = 1.0  # sample one frame per this many seconds of media time
    every_frame: int | None = None  # or one frame every N frames (files; overrides every_s)
    max_frames: int | None = None  # per live source
    duration_s: float | None = None  # per live source
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    rtsp_tcp: bool = False
    reconnects: int = 5  # attempts after a drop before giving up on a live source
    backoff_s: float = 1.0  # first reconnect delay; doubles up to backoff_max_s
    backoff_max_s: float = 30.0
    queue_size: int = 4  # sampled frames waiting for inference, all live sources together


def mask_credentials(url: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://user:***@host/x`` (for CSV rows and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password is not None else f"***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _failure_item(source: str, status: Status, message: str, frame: int | None = None,
                  ts: float | None = None) -> WorkItem:
    def fail():
        raise ImageReadError(status, message)

    return WorkItem(source, fail, frame, ts)


def _open_capture(target: str, options: VideoOptions) -> cv2.VideoCapture:
    if target.isdigit():
        return cv2.VideoCapture(int(target))
    if target.startswith("/dev/video"):
        return cv2.VideoCapture(target, cv2.CAP_V4L2)
    if options.rtsp_tcp and target.lower().startswith("rtsp"):
        # OpenCV reads this process-wide variable when it opens an FFmpeg capture
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(options.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(options.read_timeout_s * 1000),
    ]
    return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)


# ----------------------------------------------------------------------------- files
def file_items(source: Source, pp: PreprocessConfig, options: VideoOptions, stop: threading.Event,
               completed: set[str]) -> Iterator[WorkItem]:
    """Sampled frames of a video file; marks the file completed when read to the end."""
    cap = _open_capture(source.path, options)
    try:
        if not cap.isOpened():
            yield _failure_item(source.path, Status.STREAM_ERROR, "cannot open video (missing, unreadable or unsupported)")
            completed.add(source.path)
            return
        index, next_ms, emitted = 0, 0.0, 0
        while not stop.is_set():
            if not cap.grab():
                break
            ts = cap.get(cv2.CAP_PROP_POS_MSEC)
            if options.every_frame:
                take = index % options.every_frame == 0
            else:
                take = ts + 1e-6 >= next_ms
                if take:
                    step = (options.every_s or 1.0) * 1000.0
                    while next_ms <= ts + 1e-6:
                        next_ms += step
            if take:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    yield WorkItem(source.path, partial(prepare_array, rgb, pp), index, round(ts, 1))
                else:
                    yield _failure_item(source.path, Status.CORRUPT, "frame could not be decoded", index, round(ts, 1))
                emitted += 1
            index += 1
        else:
            return  # stopped: not completed, a resumed run redoes this file
        if index == 0:
            yield _failure_item(source.path, Status.STREAM_ERROR, "video has no readable frames")
        completed.add(source.path)
    finally:
        cap.release()


# ----------------------------------------------------------------------------- live sources
class LiveReader:
    """Reads one live source in a thread and offers sampled frames to a shared queue."""

    def __init__(self, source: Source, pp: PreprocessConfig, options: VideoOptions, out: queue.Queue,
                 stop: threading.Event, log):
        self.source = source
        self.name = mask_credentials(source.path)
        self.pp = pp
        self.options = options
        self.out = out
        self.stop = stop
        self.log = log
        self.done = threading.Event()
        self.emitted = 0
        self._last_progress = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"edgeclass-live-{self.name}", daemon=True)

    def start(self) -> LiveReader:
        self._thread.start()
        return self

    def _offer(self, item: WorkItem) -> None:
        """Put without blocking; when inference lags, drop the oldest waiting frame."""
        while True:
            try:
                self.out.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.out.get_nowait()
                except queue.Empty:
                    pass

    def _fail(self, status: Status, message: str) -> None:
        self.log(f"{status.value}: {self.name}: {message}")
        self._offer(_failure_item(self.name, status, message))

    def _run(self) -> None:
        o = self.options
        opened_at = None
        attempts = 0
        backoff = o.backoff_s
        try:
            while not self.stop.is_set():
                result = self._read_session(opened_at)
                if result is None:  # ended by a bound (duration, max frames) or stop
                    return
                status, message, opened_at, had_frames = result
                if had_frames:
                    attempts, backoff = 0, o.backoff_s
                attempts += 1
                if attempts > o.reconnects:
                    self._fail(status, f"{message}; gave up after {o.reconnects} reconnect attempts")
                    return
                self.log(f"{status.value}: {self.name}: {message}; reconnecting in {backoff:.1f}s "
                         f"(attempt {attempts}/{o.reconnects})")
                if self.stop.wait(backoff):
                    return
                backoff = min(backoff * 2, o.backoff_max_s)
        finally:
            self.done.set()

    def _read_session(self, opened_at):
        """One connection. Returns None when finished for good, else (status, message, opened_at, had_frames)."""
        o = self.options
        t_open = time.monotonic()
        cap = _open_capture(self.source.path, o)
        if not cap.isOpened():
            cap.release()
            waited = time.monotonic() - t_open
            status = Status.TIMEOUT if waited >= o.open_timeout_s * 0.9 else Status.STREAM_ERROR
            return status, f"cannot open stream ({waited:.1f}s)", opened_at, False
        if opened_at is None:
            opened_at = time.monotonic()
        next_ms = None
        had_frames = False
        reader = _WatchedReader(cap, o.read_timeout_s)
        try:
            while not self.stop.is_set():
                elapsed_ms = (time.monotonic() - opened_at) * 1000.0
                if o.duration_s is not None and elapsed_ms >= o.duration_s * 1000.0:
                    return None
                if o.max_frames is not None and self.emitted >= o.max_frames:
                    return None
                status, frame = reader.read()
                if status == "hung":
                    return Status.TIMEOUT, f"no frame for {o.read_timeout_s:.0f}s (read abandoned)", opened_at, had_frames
                if status == "eof":
                    return Status.EOF, "stream ended or dropped", opened_at, had_frames
                had_frames = True
                ts = (time.monotonic() - opened_at) * 1000.0
                step = (o.every_s or 1.0) * 1000.0
                if next_ms is None or ts >= next_ms:
                    next_ms = (ts if next_ms is None else next_ms) + step
                    while next_ms <= ts:
                        next_ms += step
                    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    self._offer(WorkItem(self.name, partial(prepare_array, rgb, self.pp), self.emitted, round(ts, 1)))
                    self.emitted += 1
            return None
        finally:
            reader.close()


class _WatchedReader:
    """``cap.read()`` in a helper thread with a deadline: a hung read is abandoned, not waited on."""

    def __init__(self, cap: cv2.VideoCapture, timeout_s: float):
        self.cap = cap
        self.timeout_s = timeout_s
        self._requests: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._abandoned = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="edgeclass-read")
        self._thread.start()

    def _loop(self) -> None:
        while True:
            if self._requests.get() is None:
                break
            ok, frame = self.cap.read()
            if self._abandoned:
                break
            self._results.put((ok, frame))
        self.cap.release()

    def read(self):
        self._requests.put(True)
        try:
            ok, frame = self._results.get(timeout=self.timeout_s + 1.0)
        except queue.Empty:
            self._abandoned = True  # the helper releases the capture if the read ever returns
            return "hung", None
        if not ok or frame is None:
            return "eof", None
        return "ok", frame

    def close(self) -> None:
        if not self._abandoned:
            self._requests.put(None)


class LiveHub:
    """All live sources of a run, read concurrently, feeding one bounded queue."""

    def __init__(self, pp: PreprocessConfig, options: VideoOptions, stop: threading.Event, log):
        self.pp, self.options, self.stop, self.log = pp, options, stop, log
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, options.queue_size))
        self.readers: list[LiveReader] = []

    def add(self, source: Source) -> None:
        self.readers.append(LiveReader(source, self.pp, self.options, self.queue, self.stop, self.log).start())

    @property
    def active(self) -> bool:
        return any(not r.done.is_set() for r in self.readers)

    def ready(self) -> Iterator[WorkItem]:
        while True:
            try:
                yield self.queue.get_nowait()
            except queue.Empty:
                return

    def drain(self, poll: float = 0.05) -> Iterator[WorkItem | None]:
        """Frames until every reader has finished (or the run is stopped). Yields None when
        nothing arrived within ``poll`` so the pipeline can write finished rows meanwhile."""
        while not self.stop.is_set() and (self.active or not self.queue.empty()):
            try:
                yield self.queue.get(timeout=poll)
            except queue.Empty:
                yield None
