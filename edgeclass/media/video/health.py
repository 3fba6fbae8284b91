"""A live source's health (frames, drops, reconnects, picture, when it went down) and its clock
(timestamps paced by the stream's own, never ahead of real time)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from edgeclass.results import Status

RESYNC_S = 10.0  # stream time further than this from the clock: re-anchor (a reconnect, a jump)


@dataclass
class SourceHealth:
    frames_read: int = 0  # decoded (or grabbed) frames
    frames_sampled: int = 0
    dropped: int = 0  # sampled frames dropped as stale (inference behind)
    rows: int = 0  # frame rows handed to the writer
    reconnects: int = 0
    frozen: int = 0  # frozen-picture episodes
    blank: int = 0  # blank-picture episodes
    picture: str = "ok"  # the picture now: ok, frozen or blank
    last_frame_at: float | None = None  # time.monotonic()
    state: str = "starting"  # starting, reading, reconnecting, finished, failed, abandoned
    errors: list[str] = field(default_factory=list)
    down_since: float | None = field(default_factory=time.time)  # wall time; None while frames arrive
    last_failure: tuple[Status, str] | None = None  # why the last connection broke

    @property
    def up(self) -> bool:
        """Delivering frames (a frozen or blank picture is up: frames arrive)."""
        return self.down_since is None and self.state not in ("failed", "abandoned")

    def to_dict(self, now: float) -> dict[str, Any]:
        age = None if self.last_frame_at is None else round(now - self.last_frame_at, 3)
        return {"frames_read": self.frames_read, "frames_sampled": self.frames_sampled, "dropped": self.dropped,
                "rows": self.rows, "reconnects": self.reconnects, "frozen": self.frozen, "blank": self.blank,
                "picture": self.picture, "up": self.up,
                "down_since": None if self.down_since is None else iso_time(self.down_since),
                "last_frame_age_s": age, "state": self.state, "errors": self.errors[-5:]}


def iso_time(wall: float) -> str:
    """Local time with its UTC offset, to the second (row texts, health)."""
    return datetime.fromtimestamp(wall, timezone.utc).astimezone().isoformat(timespec="seconds")


def failing_sources(health: dict[str, dict[str, Any]]) -> list[str]:
    """Live sources that were down, frozen or blank when the run ended (the run exits 1)."""
    return [name for name, h in health.items() if not h["up"] or h["picture"] != "ok"]


class LiveClock:
    """Milliseconds since the source was first opened: the stream's own frame spacing when it
    has timestamps (a burst of buffered frames keeps its spacing), but never ahead of the clock
    (a burst on connect or a timestamp jump cannot sample faster than real time), never backwards,
    and re-anchored when far behind it."""

    def __init__(self) -> None:
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
