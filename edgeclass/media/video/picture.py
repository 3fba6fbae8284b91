"""What a live picture looks like: frozen (the same frame for a while, as cameras do when the
sensor hangs) or blank (nearly uniform: a covered lens, black, a white-out). Both work on the
point-sampled brightness grid the live reader takes of each sampled frame.
"""

from __future__ import annotations

import numpy as np

FROZEN_MEAN_DIFF = 0.5  # grey levels: below this mean |difference| two pictures are the same
BLANK_SPREAD = 24  # grey levels: a picture whose brightness (all but its darkest and brightest
#                    BLANK_TAIL_PERCENT) spans fewer levels than this is blank (--blank-after's help)
BLANK_TAIL_PERCENT = 1.0  # ignored at each end: an on-screen clock on a covered camera, hot pixels


def luma_spread(grid: np.ndarray) -> int:
    """Grey levels spanned by a picture's point-sampled brightness once its darkest and brightest
    ``BLANK_TAIL_PERCENT`` are set aside: near 0 for a covered lens, a black or a white-out
    picture even with sensor noise and a camera's on-screen clock; tens of levels for anything
    a camera can see, at night too (auto gain stretches a dark scene)."""
    at_most = np.cumsum(np.bincount(grid.ravel(), minlength=256))  # samples at or below each level
    k = int(grid.size * BLANK_TAIL_PERCENT / 100.0)
    lo, hi = np.searchsorted(at_most, (k, grid.size - 1 - k), side="right")  # the k-th darkest, k-th brightest
    return int(hi) - int(lo)


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

    def reset(self) -> bool:
        """Forget the reference picture; True when a frozen episode ends with it."""
        was, self.frozen, self.ref = self.frozen, False, None
        return was


class BlankDetector:
    """A nearly uniform picture (:func:`luma_spread` below ``BLANK_SPREAD``) for ``after_s``
    seconds -> blank, once per episode; it ends with the first picture that is not uniform."""

    def __init__(self, after_s: float):
        self.after_s = after_s
        self.since: float | None = None  # when the current run of uniform pictures began
        self.spread: int | None = None  # of the last picture
        self.blank = False

    @property
    def uniform(self) -> bool:
        """The last picture was nearly uniform (whether or not long enough to be blank)."""
        return self.spread is not None and self.spread < BLANK_SPREAD

    def update(self, grid: np.ndarray, t: float) -> str | None:
        """"blank" when an episode starts, "recovered" when it ends, else None."""
        if self.after_s <= 0:
            return None
        self.spread = luma_spread(grid)
        if not self.uniform:
            self.since = None
            if self.blank:
                self.blank = False
                return "recovered"
            return None
        if self.since is None:
            self.since = t
        if not self.blank and t - self.since >= self.after_s:
            self.blank = True
            return "blank"
        return None
