"""PIL's antialiased resampling (``Image.resize`` with BICUBIC or BILINEAR), restricted to the
output pixels a centre crop keeps, at the cost of a few C calls.

PIL resamples separably: a horizontal pass over the input rows the vertical pass will read,
rounded to 8 bits, then a vertical pass (vertical first for images over 100 times taller than
wide: ``Image.resize`` does so). Each output pixel is a weighted sum of a few input
pixels, with weights from the filter stretched by the downscale factor, normalised, and
quantised to fixed point (``precompute_coeffs`` + ``normalize_coeffs_8bpc`` in Pillow's
``Resample.c``). This module computes those weights once per (input size, output size, crop)
into a plan for one of two passes, chosen once, at import:

* :class:`CompiledPlan` (:mod:`edgeclass.media.resample_native`, ``_resample.c``, built by
  ``pip install`` when a C compiler is there): Pillow's own integer arithmetic, vectorised along
  the lines, one call per pass with the GIL released;
* :class:`NumpyPlan`, where the library was not built (or ``EDGECLASS_RESAMPLER=numpy``): gather
  the input lines each block of outputs reads (``np.take``), one batched float64 matrix product
  (``np.matmul``), then PIL's rounding: ``floor(value + 0.5)``, clipped to 0..255. About 4-5x
  the CPU of the compiled pass (``python -m benchmarks.resample``).

Both give PIL's bytes, exactly, on any CPU and with any number of BLAS threads. The compiled
pass is PIL's integer code itself (int32 sums cannot overflow: 255 x sum |weight| < 2**31). The
NumPy pass computes the same sums in float64: a weight is PIL's integer divided by 2**22 and a
pixel an integer below 256, so every product, and every partial sum in whatever order BLAS
adds them (with or without FMA; the zero padding of a block adds exact zeros), is an integer
multiple of 2**-22 below 2**9 in magnitude: at most 31 significant bits, exact in float64's 53.
Adding 0.5 is exact too, and truncating a value in [0, 255] to uint8 is ``floor``: PIL's
``clip8((sum + 2**21) >> 22)``, with no rounding anywhere.

Channels stay interleaved (OpenCV's BGR order): a pass works on lines of ``3 * length`` values.
The horizontal pass runs on transposed lines (``cv2.transpose``), so both passes work on rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edgeclass.media import resample_native

_PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed point for 8-bit images
_CHANNELS = 3  # resample_crop takes HxWx3 images
_BLOCK = 8  # NumPy pass: outputs per block (bigger blocks: a smaller gathered copy, more zero-padded products)
# NumPy pass: gathered values per chunk of rows in the horizontal pass, at most, in equal chunks (a
# 1080p image decoded at 1/2, 1.03 M values, goes in two): inside a run the resize follows a decode
# that has evicted the cache, where two chunks were faster than one (and than three, or 4 or 16
# outputs a block, measured in float64); it also bounds memory on large images
_CHUNK_VALUES = 3 << 18
# compiled pass: no float temporaries, so a chunk is bounded by its transposed copy (uint8) alone:
# 1080p and 800x600 regions go in one chunk (two cost 10 % and 4 % more, each resize right after
# its decode); huge undecimated images (a 12 MP PNG: 24 MB) are still split
_NATIVE_CHUNK_BYTES = 8 << 20
# NumPy pass: multiply-adds per matrix product. OpenBLAS gives a product M*N*K / 2**18 threads (at
# least 1; interface/gemm.c, the same for float32 and float64), so at most 2**18 keeps a resize in
# the calling thread (the decode workers are the parallelism)
_MAX_PRODUCT = 1 << 18


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    return np.where(
        x < 1.0,
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
        np.where(x < 2.0, (((x - 5.0) * x + 8.0) * x - 4.0) * a, 0.0),
    )


def _bilinear(x: np.ndarray) -> np.ndarray:
    weights: np.ndarray = np.maximum(1.0 - np.abs(x), 0.0)
    return weights


FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}


def _pil_weights(in_size: int, out_size: int, first: int, count: int,
                 interpolation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` for the given outputs:
    (xmin, xmax per output, dense (count, taps) fixed-point weights: integers, as float64)."""
    kernel, support = FILTERS[interpolation]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    taps = int(math.ceil(support)) * 2 + 1
    center = (np.arange(first, first + count, dtype=np.float64) + 0.5) * scale
    xmin = np.maximum((center - support + 0.5).astype(np.int64), 0)  # C's (int): truncation
    xmax = np.minimum((center + support + 0.5).astype(np.int64), in_size)
    pos = xmin[:, None] + np.arange(taps)[None, :]
    w = kernel((pos - center[:, None] + 0.5) * (1.0 / filterscale))
    w = np.where(pos < xmax[:, None], w, 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total != 0.0)
    fixed = np.trunc(w * (1 << _PRECISION_BITS) + np.where(w < 0, -0.5, 0.5))  # (int)(x +- 0.5)
    return xmin, xmax, fixed


def _read_only(*arrays: np.ndarray) -> None:
    for array in arrays:
        array.setflags(write=False)  # a plan is shared by every call through the cache


def _lines(xmin: np.ndarray, xmax: np.ndarray) -> tuple[int, int]:
    """[first, last) input lines any output reads (the last output reads the furthest)."""
    return int(xmin.min()), int(xmax.max())


def _equal_step(length: int, cap: int) -> int:
    """The chunk size that cuts ``length`` into the fewest chunks of at most ``cap`` (at least 1),
    all equal but the last by at most one: no small remainder paying a whole chunk's calls."""
    cap = max(1, cap)
    if length <= cap:
        return cap
    chunks = -(-length // cap)
    return -(-length // chunks)


def _in_chunks(array: np.ndarray, cap: int, one: Callable[[np.ndarray], np.ndarray], axis: int) -> np.ndarray:
    """``one`` over ``array`` cut along ``axis`` into chunks of :func:`_equal_step`, joined again."""
    length = array.shape[axis]
    step = _equal_step(length, cap)
    if length <= step:
        return one(array)
    return np.concatenate([one(part) for part in np.split(array, range(step, length, step), axis=axis)], axis=axis)


@dataclass(frozen=True)
class CompiledPlan:
    """One axis for the compiled pass: outputs ``count`` from input lines ``lines`` = [lo, hi)."""

    count: int
    lines: tuple[int, int]
    # per output: its first line (from ``lo``), its number of taps, PIL's integer weights (count, taps)
    along: resample_native.Taps
    # the same per (output, channel), for lines that are (column, channel) pairs: the horizontal
    # pass over transposed bytes (output j, channel c: lines 3 * first[j] + c + 3 t)
    across: resample_native.Taps

    @classmethod
    def build(cls, in_size: int, out_size: int, first: int, count: int, interpolation: str) -> CompiledPlan:
        """The plan for outputs ``first .. first + count - 1`` of ``out_size`` from ``in_size`` lines."""
        xmin, xmax, fixed = _pil_weights(in_size, out_size, first, count, interpolation)
        lo, hi = _lines(xmin, xmax)
        start, taps, coeffs = (xmin - lo).astype(np.int32), (xmax - xmin).astype(np.int32), fixed.astype(np.int32)
        start3 = (start[:, None] * _CHANNELS + np.arange(_CHANNELS, dtype=np.int32)).reshape(-1)
        taps3, coeffs3 = np.repeat(taps, _CHANNELS), np.repeat(coeffs, _CHANNELS, axis=0)
        _read_only(start, taps, coeffs, start3, taps3, coeffs3)
        along = resample_native.Taps.of(start, taps, coeffs)
        return cls(count, (lo, hi), along, resample_native.Taps.of(start3, taps3, coeffs3, step=_CHANNELS))

    def apply(self, lines: np.ndarray) -> np.ndarray:
        """Resample axis 0 of ``lines`` (input lines ``self.lines``, each a row of values) ->
        (count, row length) uint8, as PIL's ``clip8``."""
        return resample_native.apply(lines.reshape(lines.shape[0], -1), self.along)

    def horizontal(self, rows: np.ndarray) -> np.ndarray:
        """The horizontal pass over ``rows`` (y, x, c), in chunks of rows on huge images."""
        cap = _NATIVE_CHUNK_BYTES // ((self.lines[1] - self.lines[0]) * _CHANNELS)
        return _in_chunks(rows, cap, self._bytes, axis=0)

    def _bytes(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` as single bytes, transposed so each line is one (column, channel) pair (OpenCV
        transposes 1-byte elements in about two thirds of the time it takes for 3-byte pixels,
        measured), every third line a tap, transposed back."""
        x0, x1 = self.lines
        lines = cv2.transpose(rows.reshape(rows.shape[0], -1)[:, x0 * _CHANNELS : x1 * _CHANNELS])
        out = resample_native.apply(lines, self.across)
        return cv2.transpose(out).reshape(rows.shape[0], self.count, _CHANNELS)


@dataclass(frozen=True)
class NumpyPlan:
    """One axis for the NumPy pass: outputs ``count`` from input lines ``lines`` = [lo, hi), in
    blocks of ``_BLOCK`` outputs, each block reading ``span`` consecutive lines."""

    count: int
    lines: tuple[int, int]
    index: np.ndarray  # (blocks * span,) input lines gathered (from ``lo``), block after block
    weights: np.ndarray  # (blocks, _BLOCK, span) PIL's fixed-point weights / 2**22, float64 (zero padded)

    @classmethod
    def build(cls, in_size: int, out_size: int, first: int, count: int, interpolation: str) -> NumpyPlan:
        """As :meth:`CompiledPlan.build`."""
        xmin, xmax, fixed = _pil_weights(in_size, out_size, first, count, interpolation)
        taps = fixed.shape[1]
        blocks = -(-count // _BLOCK)
        pad = blocks * _BLOCK - count
        xmin = np.concatenate([xmin, np.repeat(xmin[-1:], pad)]).reshape(blocks, _BLOCK)
        w = np.concatenate([fixed / (1 << _PRECISION_BITS), np.zeros((pad, taps))]).reshape(blocks, _BLOCK, taps)
        start = xmin.min(axis=1)
        offset = xmin - start[:, None]  # where each output's taps sit in its block's span
        span = int((offset.max(axis=1) + taps).max())
        weights = np.zeros((blocks, _BLOCK, span), dtype=np.float64)
        rows, outs = np.arange(blocks)[:, None, None], np.arange(_BLOCK)[None, :, None]
        weights[rows, outs, offset[:, :, None] + np.arange(taps)[None, None, :]] = w
        lo, hi = _lines(xmin, xmax)
        index = (np.minimum(start[:, None] + np.arange(span)[None, :], hi - 1) - lo).reshape(-1)  # past hi: weight 0
        _read_only(index, weights)
        return cls(count, (lo, hi), index, weights)

    def apply(self, lines: np.ndarray) -> np.ndarray:
        """As :meth:`CompiledPlan.apply`, in column chunks of at most ``_MAX_PRODUCT`` multiply-adds."""
        flat = lines.reshape(lines.shape[0], -1)
        cap = _MAX_PRODUCT // self.weights.shape[2] // _BLOCK
        return _in_chunks(flat, cap, self._product, axis=1)

    def horizontal(self, rows: np.ndarray) -> np.ndarray:
        """The horizontal pass over ``rows`` (y, x, c): on transposed pixels, in chunks of rows."""
        x0, x1 = self.lines

        def one(part: np.ndarray) -> np.ndarray:
            columns = cv2.transpose(np.ascontiguousarray(part[:, x0:x1]))  # lines are columns
            return cv2.transpose(self.apply(columns).reshape(self.count, -1, _CHANNELS))

        return _in_chunks(rows, _CHUNK_VALUES // (self.index.size * _CHANNELS), one, axis=0)

    def _product(self, flat: np.ndarray) -> np.ndarray:
        """The exact sums (the module's docstring), rounded half up and clipped as PIL's ``clip8``."""
        blocks, _, span = self.weights.shape
        gathered = np.take(flat, self.index, axis=0).astype(np.float64).reshape(blocks, span, -1)
        out = np.matmul(self.weights, gathered).reshape(-1, flat.shape[1])[: self.count]
        out += 0.5
        rounded = np.empty(out.shape, dtype=np.uint8)
        return np.clip(out, 0.0, 255.0, out=rounded, casting="unsafe")  # the cast truncates: floor on [0, 255]


# one cache of plans per pass (read-only, shared by every call)
compiled_plan = lru_cache(maxsize=512)(CompiledPlan.build)
numpy_plan = lru_cache(maxsize=512)(NumpyPlan.build)
# the pass, chosen once: ``axis_plan(in_size, out_size, first, count, interpolation)`` plans one axis
axis_plan: Callable[[int, int, int, int, str], CompiledPlan | NumpyPlan] = (
    compiled_plan if resample_native.available() else numpy_plan)


def resample_crop(image: np.ndarray, out_h: int, out_w: int, top: int, left: int, crop_h: int, crop_w: int,
                  interpolation: str) -> np.ndarray:
    """``Image.resize((out_w, out_h), filter)`` of an ``HxWx3`` uint8 image, then the crop
    ``[top:top+crop_h, left:left+crop_w]``, computing only the cropped outputs."""
    in_h, in_w = image.shape[:2]
    hplan = axis_plan(in_w, out_w, left, crop_w, interpolation) if in_w != out_w else None
    vplan = axis_plan(in_h, out_h, top, crop_h, interpolation) if in_h != out_h else None
    if vplan is not None and in_h > 100 * in_w:  # Image.resize's order for very tall images
        rows = vplan.apply(image[vplan.lines[0] : vplan.lines[1]]).reshape(crop_h, in_w, 3)
        return hplan.horizontal(rows) if hplan is not None else np.ascontiguousarray(rows[:, left : left + crop_w])
    y0, y1 = vplan.lines if vplan is not None else (top, top + crop_h)
    rows = image[y0:y1]
    rows = hplan.horizontal(rows) if hplan is not None else rows[:, left : left + crop_w]
    if vplan is None:
        return np.ascontiguousarray(rows)
    return vplan.apply(np.ascontiguousarray(rows)).reshape(crop_h, crop_w, 3)
