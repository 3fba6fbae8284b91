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
* Timestamps: milliseconds since the source was first opened, paced by the stream's own
  timestamps when it has them (bursts after a connect keep their spacing), else by the clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from edgeclass.media.inputs import Source
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.media.video.files import failure_item, frame_item
from edgeclass.media.video.options import VideoOptions, mask_credentials
from edgeclass.media.video.reader import Frame, ReadFailure, open_reader
from edgeclass.results import Status, WorkItem

FROZEN_MEAN_DIFF = 0.5  # grey levels: below this mean |difference| two pictures are the same
RESYNC_S = 10.0  # stream time further than this from the clock: re-anchor (a reconnect, a jump)
WATCHDOG_PERIOD_S = 0.5


@dataclass
class SourceHealth:
    frames_read: int = 0  # decoded (or grabbed) frames
    frames_sampled: int = 0
    dropped: int = 0  # sampled frames dropped as stale (inference behind)
    rows: int = 0  # frame rows handed to the writer
    reconnects: int = 0
    frozen: int = 0  # frozen-picture episodes
    last_frame_at: float | None = None  # time.monotonic()
    state: str = "starting"  # starting, reading, reconnecting, finished, failed, abandoned
    errors: list[str] = field(default_factory=list)

    def to_dict(self, now: float) -> dict:
        age = None if self.last_frame_at is None else round(now - self.last_frame_at, 3)
        return {"frames_read": self.frames_read, "frames_sampled": self.frames_sampled, "dropped": self.dropped,
                "rows": self.rows, "reconnects": self.reconnects, "frozen": self.frozen,
                "last_frame_age_s": age, "state": self.state, "errors": self.errors[-5:]}


class FrozenDetector:
    """Same picture (point-sampled brightness) for ``after_s`` seconds -> frozen, once per episode."""

    def __init__(self, after_s: float):
        self.after_s = after_s
        self.ref: np.ndarray | None = None
        self.ref_t = 0.0
        self.frozen = False

    def update(self, grid: np.ndarray, t: float) -> str | None:
        """"frozen" when an episode starts, "recovered" when it ends, else None."""
        if self.after_s <= 0:
            return None
        same = self.ref is not None and self.ref.shape == grid.shape and \
            float(np.abs(grid - self.ref).mean()) < FROZEN_MEAN_DIFF
        if not same:
            self.ref, self.ref_t = grid, t
            if self.frozen:
                self.frozen = False
                return "recovered"
            return None
        if not self.frozen and t - self.ref_t >= self.after_s:
            self.frozen = True
            return "frozen"
        return None


class LiveClock:
    """Milliseconds since the source was first opened: the stream's own frame spacing when it
    has timestamps (a burst of buffered frames keeps its spacing), but never ahead of the clock
    (a burst on connect or a timestamp jump cannot sample faster than real time), never backwards,
    and re-anchored when far behind it."""

    def __init__(self):
        self.opened = time.monotonic()
        self.anchor: float | None = None  # clock ms minus stream ms
        self.last = 0.0

    def new_session(self) -> None:
        self.anchor = None

    def ms(self, stream_s: float | None, now: float) -> float:
        clock_ms = (now - self.opened) * 1000.0
        if stream_s is None:
            t = clock_ms
        else:
            stream_ms = stream_s * 1000.0
            if self.anchor is None or clock_ms - (self.anchor + stream_ms) > RESYNC_S * 1000.0:
                self.anchor = clock_ms - stream_ms
            t = self.anchor + stream_ms
            if t > clock_ms:  # running ahead: slide the anchor back
                self.anchor, t = clock_ms - stream_ms, clock_ms
            if t < self.last:  # a jump backwards: carry on from the last time
                self.anchor, t = self.last - stream_ms, self.last
        self.last = max(self.last, t)
        return t


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
        self.beat = time.monotonic()
        self.current = None  # the open reader, if any
        self.waiting = False  # in a reconnect backoff: not hung
        self.clock = LiveClock()
        self.sampled = 0
        self.sampler_next: float | None = None  # stream ms of the next sample
        self.frozen = FrozenDetector(options.frozen_after_s)
        self._thread = threading.Thread(target=self._run, name=f"edgeclass-live-{self.name}", daemon=True)

    def start(self) -> LiveReader:
        self._thread.start()
        return self

    # ---------------------------------------------------------------- queue (under hub.cond)
    def _put(self, item: WorkItem, is_frame: bool) -> None:
        with self.hub.cond:
            if self.abandoned:
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
        self.hub.log(f"{status.value}: {self.name}: {message}")
        self._put(failure_item(self.name, status, message, frame, ts), is_frame=False)

    def abandon(self, hung_s: float) -> None:
        """Called by the watchdog: the reader thread is stuck in a read; give up on it."""
        with self.hub.cond:
            if self.done.is_set():
                return
            self._status_row(Status.TIMEOUT, f"read hung for {hung_s:.0f}s; source abandoned")
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
        o = self.options
        attempts, backoff = 0, o.backoff_s
        try:
            while not self._stopping():
                failure, had_frames = self._session()
                if failure is None:
                    break
                if had_frames:
                    attempts, backoff = 0, o.backoff_s
                attempts += 1
                self.health.errors.append(f"{failure.status.value}: {failure.message}")
                if attempts > o.reconnects:
                    self.health.state = "failed"
                    self._status_row(failure.status, f"{failure.message}; gave up after {o.reconnects} reconnect attempts")
                    return
                self.health.state = "reconnecting"
                self.hub.log(f"{failure.status.value}: {self.name}: {failure.message}; reconnecting in {backoff:.1f}s "
                             f"(attempt {attempts}/{o.reconnects})")
                self.waiting = True
                stopped = self.hub.stop.wait(backoff)
                self.waiting = False
                if stopped:
                    break
                self.health.reconnects += 1
                backoff = min(backoff * 2, o.backoff_max_s)
            if self.health.state not in ("failed", "abandoned"):
                self.health.state = "finished"
        finally:
            with self.hub.cond:
                self.done.set()
                self.hub.cond.notify_all()

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
                    if self._stopping():
                        return None, had_frames
                    self._consider(frame, self.clock.ms(frame.time_s, now))
            return (None if self._stopping() else ReadFailure(Status.EOF, "stream ended")), had_frames
        except ReadFailure as exc:
            return exc, had_frames
        finally:
            self.current = None

    def _consider(self, frame: Frame, ts_ms: float) -> None:
        """Sample by time; check for a frozen picture; queue the frame (unconverted)."""
        if self.sampler_next is not None and ts_ms < self.sampler_next:
            return
        step = self.options.interval_s * 1000.0
        nxt = ts_ms if self.sampler_next is None else self.sampler_next
        while nxt <= ts_ms:
            nxt += step
        self.sampler_next = nxt
        event = self.frozen.update(frame.luma_grid(), ts_ms / 1000.0) if self.frozen.after_s > 0 else None
        index = self.sampled
        self.sampled += 1
        self.health.frames_sampled += 1
        if event == "frozen":
            self.health.frozen += 1
            self._status_row(Status.FROZEN, f"same picture for {self.options.frozen_after_s:g}s", index, round(ts_ms, 1))
            return
        if event == "recovered":
            self.hub.log(f"{self.name}: picture moving again")
        if self.frozen.frozen:
            return
        self._put(frame_item(self.name, frame, self.pp, self.options, index, ts_ms), True)


class LiveHub:
    """All live sources of a run: per-source queues served round-robin, one watchdog."""

    def __init__(self, pp: PreprocessConfig, options: VideoOptions, stop: threading.Event, log):
        self.pp, self.options, self.stop, self.log = pp, options, stop, log
        self.cond = threading.Condition()
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

    def health(self) -> dict[str, dict]:
        now = time.monotonic()
        return {r.name: r.health.to_dict(now) for r in self.readers}
