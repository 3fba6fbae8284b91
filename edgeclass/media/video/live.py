"""Live sources (RTSP, HTTP MJPEG/HLS, cameras) read concurrently, one thread per source.

* Decode, don't convert: every frame is decoded (the codec needs them), only sampled frames
  are converted, and that happens later, in the pipeline's workers (a frame dropped as stale is
  never converted). ``--keyframes``: the decoder returns key frames only.
* No thread per read: FFmpeg's own interrupt callback bounds every blocking call (open and read
  timeouts); one watchdog thread for all sources checks heartbeats twice a second and abandons a
  source whose read hangs anyway (a camera driver, a codec), with a ``timeout`` row.
* Each source has its own small queue: when inference falls behind, its own oldest frame is
  dropped (counted); its status rows (timeout, eof, stream_error, frozen) are never dropped.
  ``--max-frames`` counts frame rows handed to the writer, not frames sampled.
* A frozen picture (the same frame for ``--frozen-after`` seconds, as cameras do when the sensor
  hangs) is a ``frozen`` row, once per episode; frozen frames are not classified meanwhile.
* A blank picture (nearly uniform for ``--blank-after`` seconds: a covered lens, black, a
  white-out; see :mod:`edgeclass.media.video.picture`) is a ``blank`` row, once per episode;
  blank frames are not classified meanwhile, and a blank picture is never called frozen.
* A source that is down when the run ends (``--duration``, ``--max-runtime``, a signal), or never
  delivered a frame, gets one row with its last failure's status ("down since <time>, N
  reconnects"); :meth:`LiveHub.close` gives the rows the pipeline could no longer take after a stop.
* Timestamps: milliseconds since the source was first opened, paced by the stream's own
  timestamps when it has them (bursts after a connect keep their spacing), else by the clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgeclass.media.inputs import Source
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.media.video.files import failure_item, frame_item
from edgeclass.media.video.health import LiveClock, SourceHealth, iso_time
from edgeclass.media.video.options import VideoOptions, mask_credentials
from edgeclass.media.video.picture import BlankDetector, FrozenDetector
from edgeclass.media.video.reader import AvReader, CameraReader, Frame, ReadFailure, open_reader
from edgeclass.results import Result, Status, WorkItem

WATCHDOG_PERIOD_S = 0.5


class LiveReader:
    """Reads one live source in its own thread into its own small queue."""

    def __init__(self, source: Source, pp: PreprocessConfig, options: VideoOptions, hub: LiveHub):
        self.source = source
        self.name = mask_credentials(source.path)
        self.pp = pp
        self.options = options
        self.hub = hub
        self.health = SourceHealth()
        self.pending: deque[tuple[bool, WorkItem]] = deque()  # (is_frame, item)
        self.done = threading.Event()  # no more items will be queued
        self.finish = threading.Event()  # enough rows (--max-frames): stop reading
        self.abandoned = False
        self.final_sent = False  # the row saying this source is down (gave up, or down at the end)
        self.beat = time.monotonic()
        self.current: AvReader | CameraReader | None = None  # the open reader, if any
        self.waiting = False  # in a reconnect backoff: not hung
        self.clock = LiveClock()
        self.sampled = 0
        self.sampler_next: float | None = None  # stream ms of the next sample
        self.frozen = FrozenDetector(options.frozen_after_s)
        self.blank = BlankDetector(options.blank_after_s)
        self.watch_picture = options.frozen_after_s > 0 or options.blank_after_s > 0
        self._thread = threading.Thread(target=self._run, name=f"edgeclass-live-{self.name}", daemon=True)

    def start(self) -> LiveReader:
        self._thread.start()
        return self

    # ---------------------------------------------------------------- queue (under hub.cond)
    def _put(self, item: WorkItem, is_frame: bool) -> None:
        with self.hub.cond:
            if self.abandoned or self.hub.closed:
                return
            if is_frame and sum(1 for f, _ in self.pending if f) >= self.options.queue_size:
                for i, (f, _) in enumerate(self.pending):
                    if f:  # the oldest frame of this source goes, never a status row
                        del self.pending[i]
                        self.health.dropped += 1
                        break
            self.pending.append((is_frame, item))
            self.hub.cond.notify_all()

    def take(self) -> WorkItem | None:
        """The next item of this source (called under hub.cond); frames past --max-frames are discarded."""
        while self.pending:
            is_frame, item = self.pending.popleft()
            if not is_frame:
                return item
            if self.options.max_frames is None or self.health.rows < self.options.max_frames:
                self.health.rows += 1
                if self.options.max_frames is not None and self.health.rows >= self.options.max_frames:
                    self.finish.set()
                return item
        return None

    def _status_row(self, status: Status, message: str, frame: int | None = None, ts: float | None = None) -> None:
        """A status row for the output (the run's reporter says it when the row is written)."""
        self._put(failure_item(self.name, status, message, frame, ts), is_frame=False)

    def abandon(self, hung_s: float) -> None:
        """Called by the watchdog: the reader thread is stuck in a read; give up on it."""
        with self.hub.cond:
            if self.done.is_set():
                return
            self._went_down(ReadFailure(Status.TIMEOUT, f"read hung for {hung_s:.0f}s"))
            self._final_row(Status.TIMEOUT, f"read hung for {hung_s:.0f}s; source abandoned")
            self.abandoned = True
            self.health.state = "abandoned"
            self.done.set()
            self.hub.cond.notify_all()

    @property
    def heartbeat(self) -> float:
        """Last sign of life: a frame, an open attempt, or a packet (key-frame mode decodes few frames)."""
        return max(self.beat, getattr(self.current, "last_packet", 0.0))

    # ---------------------------------------------------------------- reading thread
    def _stopping(self) -> bool:
        if self.hub.stop.is_set() or self.finish.is_set() or self.abandoned:
            return True
        d = self.options.duration_s
        return d is not None and time.monotonic() - self.clock.opened >= d

    def _run(self) -> None:
        try:
            self._read_until_end()
        finally:
            with self.hub.cond:
                if self.health.state not in ("failed", "abandoned"):
                    self.health.state = "finished"
                    self._row_if_down()
                self.done.set()
                self.hub.cond.notify_all()

    def _read_until_end(self) -> None:
        """Sessions, reconnecting with exponential backoff, until the end or the last attempt."""
        o = self.options
        attempts, backoff = 0, o.backoff_s
        while not self._stopping():
            failure, had_frames = self._session()
            if failure is None:
                return
            self._went_down(failure)
            if had_frames:
                attempts, backoff = 0, o.backoff_s
            if self._stopping():
                return  # the end came while down: its row is written as the thread ends
            attempts += 1
            if attempts > o.reconnects:
                self.health.state = "failed"
                self._final_row(failure.status, f"{failure.message}; gave up after {o.reconnects} reconnect attempts")
                return
            self.health.state = "reconnecting"
            self.hub.log(f"{failure.status.value}: {self.name}: {failure.message}; reconnecting in {backoff:.1f}s "
                         f"(attempt {attempts}/{o.reconnects})")
            if self._pause(backoff):
                return
            self.health.reconnects += 1
            backoff = min(backoff * 2, o.backoff_max_s)

    def _pause(self, seconds: float) -> bool:
        """Wait before a reconnect (never past --duration); True when the run is ending."""
        d = self.options.duration_s
        if d is not None:
            seconds = max(0.0, min(seconds, d - (time.monotonic() - self.clock.opened)))
        self.waiting = True
        try:
            self.hub.stop.wait(seconds)
        finally:
            self.waiting = False
        return self._stopping()

    # ---------------------------------------------------------------- down: one row per source
    def _went_down(self, failure: ReadFailure) -> None:
        h = self.health
        h.errors.append(f"{failure.status.value}: {failure.message}")
        h.last_failure = (failure.status, failure.message)
        if h.down_since is None:  # down since its last frame
            h.down_since = time.time() - (time.monotonic() - (h.last_frame_at or time.monotonic()))

    def _final_row(self, status: Status, reason: str) -> None:
        """The one row saying this source is down (at most one: :meth:`LiveHub.close` races the thread)."""
        h = self.health
        never = "never delivered a frame; " if h.frames_read == 0 else ""
        since = iso_time(h.down_since if h.down_since is not None else time.time())
        with self.hub.cond:
            if self.final_sent:
                return
            self.final_sent = True
            self._status_row(status, f"{reason}; {never}down since {since}, {h.reconnects} reconnects")

    def _row_if_down(self, now: float | None = None) -> None:
        """At the end of reading (call under hub.cond): the row of a source that is down, or has
        had no frame for --read-timeout seconds (its read has not given up yet)."""
        if self.final_sent or self.abandoned:
            return
        h = self.health
        now = time.monotonic() if now is None else now
        if h.down_since is None and h.last_frame_at is not None and now - h.last_frame_at > self.options.read_timeout_s:
            self._went_down(ReadFailure(Status.TIMEOUT, f"no frame for {now - h.last_frame_at:.0f}s"))
        if h.down_since is None:
            return
        status, reason = h.last_failure or (Status.TIMEOUT, "no frame yet")
        self._final_row(status, reason)

    def _session(self) -> tuple[ReadFailure | None, bool]:
        """One connection: (None, _) when finished for good, else (why it broke, frames seen)."""
        self.beat = time.monotonic()
        self.health.state = "starting"
        try:
            reader = open_reader(self.source.path, self.options, live=True)
        except ReadFailure as exc:
            return exc, False
        self.clock.new_session()
        self.current = reader
        self.health.state = "reading"
        had_frames = False
        try:
            with reader:
                for frame in reader.frames():
                    now = time.monotonic()
                    self.beat = now
                    if self.abandoned:
                        return None, had_frames
                    had_frames = True
                    self.health.frames_read += 1
                    self.health.last_frame_at = now
                    if self.health.down_since is not None:
                        self.health.down_since = None
                    if self._stopping():
                        return None, had_frames
                    self._consider(frame, self.clock.ms(frame.time_s, now))
            return (None if self._stopping() else ReadFailure(Status.EOF, "stream ended")), had_frames
        except ReadFailure as exc:
            return exc, had_frames
        finally:
            self.current = None

    def _consider(self, frame: Frame, ts_ms: float) -> None:
        """Sample by time; check for a blank or frozen picture; queue the frame (unconverted)."""
        if self.sampler_next is not None and ts_ms < self.sampler_next:
            return
        step = self.options.interval_s * 1000.0
        nxt = ts_ms if self.sampler_next is None else self.sampler_next
        while nxt <= ts_ms:
            nxt += step
        self.sampler_next = nxt
        index = self.sampled
        self.sampled += 1
        self.health.frames_sampled += 1
        if self.watch_picture and not self._picture_ok(frame.luma_grid(), index, ts_ms):
            return
        self._put(frame_item(self.name, frame, self.pp, self.options, index, ts_ms), True)

    def _picture_ok(self, grid: np.ndarray, index: int, ts_ms: float) -> bool:
        """Blank and frozen checks of a sampled picture; False: not to be classified. A uniform
        picture is left to the blank check (a black picture is also the same picture)."""
        h, t = self.health, ts_ms / 1000.0
        event = self.blank.update(grid, t)
        if event == "blank":
            h.blank += 1
            h.picture = "blank"
            self._status_row(Status.BLANK, f"blank picture for {self.options.blank_after_s:g}s (brightness within "
                             f"{self.blank.spread} grey levels)", index, round(ts_ms, 1))
            return False
        if event == "recovered":
            h.picture = "ok"
            self.hub.log(f"{self.name}: picture back (no longer blank)")
        if self.blank.blank:
            return False
        if self.blank.uniform:
            if self.frozen.reset():
                h.picture = "ok"
            return True
        event = self.frozen.update(grid, t)
        if event == "frozen":
            h.frozen += 1
            h.picture = "frozen"
            self._status_row(Status.FROZEN, f"same picture for {self.options.frozen_after_s:g}s", index, round(ts_ms, 1))
            return False
        if event == "recovered":
            h.picture = "ok"
            self.hub.log(f"{self.name}: picture moving again")
        return not self.frozen.frozen


class LiveHub:
    """All live sources of a run: per-source queues served round-robin, one watchdog."""

    def __init__(self, pp: PreprocessConfig, options: VideoOptions, stop: threading.Event,
                 log: Callable[[str], object]):
        self.pp, self.options, self.stop, self.log = pp, options, stop, log
        self.cond = threading.Condition()
        self.closed = False  # the run has ended: readers queue nothing more
        self.readers: list[LiveReader] = []
        self._turn = 0
        self._watchdog: threading.Thread | None = None

    def add(self, source: Source) -> None:
        self.readers.append(LiveReader(source, self.pp, self.options, self).start())
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(target=self._watch, name="edgeclass-live-watchdog", daemon=True)
            self._watchdog.start()

    @property
    def active(self) -> bool:
        return any(not r.done.is_set() for r in self.readers)

    def _take_one(self) -> WorkItem | None:
        """Round-robin over sources (no camera starves another). Call under self.cond."""
        n = len(self.readers)
        for i in range(n):
            reader = self.readers[(self._turn + i) % n]
            item = reader.take()
            if item is not None:
                self._turn = (self._turn + i + 1) % n
                return item
        return None

    def ready(self) -> Iterator[WorkItem]:
        """Items available now, without waiting."""
        while True:
            with self.cond:
                item = self._take_one()
            if item is None:
                return
            yield item

    def drain(self, poll: float = 0.05) -> Iterator[WorkItem | None]:
        """Items until every source has finished (or the run is stopped). Yields None when
        nothing arrived within ``poll`` so the pipeline can write finished rows meanwhile."""
        while not self.stop.is_set():
            with self.cond:
                item = self._take_one()
                if item is None:
                    if not self.active:
                        return
                    self.cond.wait(poll)
                    item = self._take_one()
            yield item

    def _watch(self) -> None:
        limit = max(self.options.open_timeout_s, self.options.read_timeout_s) * 2 + 5.0
        while not self.stop.wait(WATCHDOG_PERIOD_S):
            now = time.monotonic()
            for r in list(self.readers):
                if not r.done.is_set() and not r.waiting and now - r.heartbeat > limit:
                    r.abandon(now - r.heartbeat)
            if not self.active:
                return

    def health(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        return {r.name: r.health.to_dict(now) for r in self.readers}

    def close(self) -> list[Result]:
        """The end of the run (after the pipeline): the status rows still queued (a stopped
        pipeline takes no more items), and for each source still being read a row when it is
        down. Its reading thread queues nothing after this. Frames still queued are dropped."""
        from edgeclass.media.decode import ImageReadError

        rows = []
        with self.cond:
            now = time.monotonic()
            for r in self.readers:
                if not r.done.is_set():
                    r._row_if_down(now)
            self.closed = True
            for r in self.readers:
                for is_frame, item in r.pending:
                    if is_frame:
                        continue
                    try:
                        item.load()
                    except ImageReadError as exc:
                        rows.append(Result(item.source, exc.status, exc.message, (), item.frame, item.timestamp_ms))
                r.pending.clear()
        return rows
