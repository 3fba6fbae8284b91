"""The compiled resampling pass (``_resample.c``), when the install built it.

``pip install`` compiles ``edgeclass/media/_resample.c`` into a shared library beside this
module (``setup.py``: an *optional* extension, so an install without a C compiler still works).
It has no Python API: ctypes loads it and releases the GIL for each call. Where it is missing,
:mod:`edgeclass.media.resample` uses its NumPy path, which gives the same bytes (both are
Pillow's arithmetic, exactly), at several times the CPU.

``EDGECLASS_RESAMPLER=numpy`` in the environment ignores the library (for comparisons).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_LIBRARY = "edgeclass.media._resample"


@lru_cache(maxsize=1)
def kernel() -> Callable[..., None] | None:
    """``ec_resample_lines`` from the built library, or None (not built, or switched off)."""
    if os.environ.get("EDGECLASS_RESAMPLER", "").lower() == "numpy":
        return None
    try:
        spec = importlib.util.find_spec(_LIBRARY)  # finds the file (never imports it: it has no PyInit)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    try:
        function = ctypes.CDLL(spec.origin).ec_resample_lines
    except (OSError, AttributeError):
        return None
    size, pointer = ctypes.c_ssize_t, ctypes.c_void_p  # addresses as integers: no pointer objects per call
    function.argtypes = (pointer, size, size, pointer, size, size, pointer, pointer, pointer, size, size)
    function.restype = None
    return function


def available() -> bool:
    return kernel() is not None


@dataclass(frozen=True)
class Taps:
    """Output ``j`` reads input lines ``first[j] + t * step`` (``t < taps[j]``) with Pillow's integer
    weights ``coeffs[j]``: checked once (the C code trusts its arguments), with the addresses the
    call takes, so that a call per pass does no more than check the lines it is given."""

    first: np.ndarray
    taps: np.ndarray
    coeffs: np.ndarray
    step: int
    reach: int  # input lines a call needs: outputs' lines rise with j, so the last output reads the furthest
    addresses: tuple[int, int, int]

    @classmethod
    def of(cls, first: np.ndarray, taps: np.ndarray, coeffs: np.ndarray, step: int = 1) -> Taps:
        """``first``/``taps`` (count,) int32, ``coeffs`` (count, width) int32, C order."""
        count = coeffs.shape[0]
        if not (first.dtype == taps.dtype == coeffs.dtype == np.int32 and step >= 1 and count > 0
                and first.flags.c_contiguous and taps.flags.c_contiguous and coeffs.flags.c_contiguous
                and first.shape == taps.shape == (count,) and int(first[0]) >= 0):
            raise ValueError("resample_lines: plan and lines do not match")
        reach = int(first[-1]) + (int(taps[-1]) - 1) * step + 1
        return cls(first, taps, coeffs, step, reach, (first.ctypes.data, taps.ctypes.data, coeffs.ctypes.data))


def resample_lines(lines: np.ndarray, first: np.ndarray, taps: np.ndarray, coeffs: np.ndarray,
                   step: int = 1) -> np.ndarray:
    """Output line ``j`` from input lines ``first[j] + t * step`` (``t < taps[j]``) of ``lines``
    ((n, length) uint8, rows contiguous) with Pillow's integer ``coeffs[j]`` ((count, width)
    int32, C order): (count, length) uint8. ``first``/``taps`` int32, in range (the caller's
    plan guarantees it)."""
    return apply(lines, Taps.of(first, taps, coeffs, step))


def apply(lines: np.ndarray, taps: Taps) -> np.ndarray:
    """:func:`resample_lines` with taps checked once (a plan's)."""
    function = kernel()
    if function is None:
        raise RuntimeError("resample_lines: edgeclass/media/_resample.c is not built (or EDGECLASS_RESAMPLER=numpy)")
    if lines.dtype != np.uint8 or lines.ndim != 2 or lines.shape[0] < taps.reach:
        raise ValueError("resample_lines: plan and lines do not match")
    count, length = taps.coeffs.shape[0], lines.shape[1]
    out = np.empty((count, length), dtype=np.uint8)
    if lines.strides[1] != 1:
        lines = np.ascontiguousarray(lines)
    function(lines.ctypes.data, lines.strides[0], length, out.ctypes.data, out.strides[0], count, *taps.addresses,
             taps.coeffs.strides[0] // 4, taps.step * lines.strides[0])
    return out
