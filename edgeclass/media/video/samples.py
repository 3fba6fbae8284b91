"""What a sampled frame of a video file is, and the arithmetic of sample times (no video library)."""

from __future__ import annotations

from dataclasses import dataclass

from edgeclass.media.video.reader import Frame

EPS_S = 1e-6  # media times closer than this are the same time


@dataclass(frozen=True)
class Sample:
    index: int
    time_s: float
    frame: Frame


def frame_index(t: float, fps: float | None) -> int:
    """A frame's index from its media time (constant frame rates: what a full decode counts)."""
    return int(round(t * fps)) if fps else 0


def first_target(start_s: float, step: float) -> float:
    """The first multiple of ``step`` at or after ``start_s``."""
    k = max(0, int(start_s / step))
    while k * step + EPS_S < start_s:
        k += 1
    return k * step
