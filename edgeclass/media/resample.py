"""PIL's antialiased resampling (``Image.resize`` with BICUBIC or BILINEAR), restricted to the
output pixels a centre crop keeps, at the cost of a few C calls.

PIL resamples separably: a horizontal pass over the input rows the vertical pass will read,
rounded to 8 bits, then a vertical pass (vertical first for images over 100 times taller than
wide: ``Image.resize`` does so). Each output pixel is a weighted sum of a few input
pixels, with weights from the filter stretched by the downscale factor, normalised, and
quantised to fixed point (``precompute_coeffs`` + ``normalize_coeffs_8bpc`` in Pillow's
``Resample.c``). This module computes the same weights once per (input size, output size,
crop), then applies each pass in one of two ways that give the same bytes:

* compiled (:mod:`edgeclass.media.resample_native`, ``_resample.c``, built by ``pip install``
  when a C compiler is there): Pillow's own integer arithmetic, vectorised along the lines, one
  call per pass with the GIL released; about 2.5x less CPU than the NumPy path after a decode
  (``benchmarks/resample.py --base numpy``);
* NumPy, where the library was not built (or ``EDGECLASS_RESAMPLER=numpy``), as

    gather (``np.take``: the input lines each block of outputs reads, one copy)
    -> one batched float32 matrix product (``np.matmul``: every block in one call)
    -> negatives to 0 (``cv2.threshold``, in place), then rounding to 8 bits with saturation
       (``cv2.convertScaleAbs``), twice: at the float32 value minus and plus its error bound
    -> the few outputs whose two roundings differ, recomputed exactly in float64 ("settled").

Exactness, hence determinism. The compiled pass is PIL's integer code itself (int32 sums cannot
overflow: 255 x sum |weight| < 2**31). For the NumPy path: the weights are PIL's integers divided by 2**22 (at most 23
significant bits: exact in float32). In float64 every product and partial sum is exact (8-bit
pixel x 22-bit weight, sums far below 2**53), whatever order BLAS adds them in. In float32 they
are not, but the error of any float32 dot product of ``n`` terms, in any order, with or without
FMA, is at most ``gamma_n * sum |w_t x_t|`` (``gamma_n = n u / (1 - n u)``, ``u = 2**-24``;
Higham, *Accuracy and Stability of Numerical Algorithms*, 3.1). Only the nonzero weights count
in ``n``: a block's zero padding gives products that are exactly 0, and adding an exact 0 rounds
nothing, so a sum over the padded span is, rounding for rounding, a sum over an output's own
taps. Hence at most ``gamma_taps * 255 * max sum |w|`` = the plan's ``slack`` (plus a margin for
the rounding of the ``+- slack`` itself). So the exact value lies within ``slack`` of the float32
one: where the float32 value rounded down by ``slack`` and up by ``slack`` gives the same 8-bit
value, that is PIL's value (a half-way tie ``k + 0.5``, which PIL rounds up, would lie strictly
inside the interval and make the two differ); where they differ (about 0.1 % of outputs), the output is
recomputed from the same gathered pixels in float64, exactly, and rounded half up as PIL does.
Every output is therefore PIL's own, on any CPU, with one BLAS thread or many: the same bytes
always give the same crop. Float32 halves the memory the products stream through (the decode
workers share the cache with OpenVINO's inference threads) and is 10-15 % faster alone.

Channels stay interleaved (OpenCV's BGR order): a pass works on lines of ``3 * length``
values (NumPy: each block product is ``(outputs x span) @ (span x 3*length)``). The horizontal
pass runs on the transposed image (``cv2.transpose``), so both passes work on rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edgeclass.media import resample_native

_PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed point for 8-bit images
_CHANNELS = 3  # resample_crop takes HxWx3 images
_BLOCK = 8  # outputs per block: the gathered copy shrinks with bigger blocks, the zero-padded products grow
_UNIT = 2.0 ** -24  # float32's unit roundoff
# covers the rounding of ``value +- slack`` in float32 inside convertScaleAbs (values < 512: half an ulp <= 2**-16)
_SLACK_MARGIN = 2.0 ** -13
# gathered values per chunk of rows in the horizontal pass, at most (3 MiB of float32), in equal chunks:
# a 1080p image decoded at 1/2 (1.03 M values) goes in two. Inside a run the resize follows a decode
# that has evicted the cache; there, two chunks are 14-16 % faster than one for 1080p images and 7 %
# for PNG 800x600, while splitting images below the cap (12 MP decoded at 1/8: 0.58 M) cost 8 %
# (benchmarks/resample.py). It also bounds memory on large images.
_CHUNK_VALUES = 3 << 18
# the compiled pass has no float temporaries: there a chunk is bounded by its transposed copy
# (uint8) alone, so 1080p and 800x600 regions go in one chunk (two cost 10 % and 4 % more, each
# resize right after its decode); huge undecimated images (a 12 MP PNG: 24 MB) are still split
_NATIVE_CHUNK_BYTES = 8 << 20
# multiply-adds per matrix product: OpenBLAS gives a product M*N*K / 2**18 threads (at least 1;
# interface/gemm.c), so at most 2**18 keeps a resize in the calling thread (the decode workers are
# the parallelism); one product for both passes of a 1080p image decoded at 1/2
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
    return np.maximum(1.0 - np.abs(x), 0.0)


FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}


@dataclass(frozen=True)
class AxisPlan:
    """How to resample one axis to outputs ``first .. first + count - 1``."""

    index: np.ndarray  # (blocks * span,) input lines gathered, block after block
    weights: np.ndarray  # (blocks, _BLOCK, span) PIL's fixed-point weights / 2**22, float64
    weights32: np.ndarray  # the same, float32 (exactly: at most 23 significant bits)
    slack: float  # bound on |float32 product - exact value| for every output, plus a margin
    count: int
    lines: tuple[int, int]  # [first, last) input lines any output reads
    # for the compiled pass (resample_native): per output, its first line (from ``lines[0]``),
    # its number of taps, and PIL's integer weights (count, taps) int32
    first: np.ndarray
    taps: np.ndarray
    coeffs: np.ndarray
    # the same per (output, channel) for lines that are (column, channel) pairs: the horizontal
    # pass over transposed bytes (output j, channel c: lines 3 * first[j] + c + 3 t)
    first3: np.ndarray
    taps3: np.ndarray
    coeffs3: np.ndarray


def _pil_weights(in_size: int, out_size: int, first: int, count: int, interpolation: str):
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` for the given outputs:
    (xmin per output, dense (count, taps) weights as integers / 2**22)."""
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


@lru_cache(maxsize=512)
def axis_plan(in_size: int, out_size: int, first: int, count: int, interpolation: str) -> AxisPlan:
    xmin, xmax, fixed = _pil_weights(in_size, out_size, first, count, interpolation)
    w = fixed / (1 << _PRECISION_BITS)
    taps = w.shape[1]
    native = (xmin.astype(np.int32), (xmax - xmin).astype(np.int32), fixed.astype(np.int32))
    blocks = -(-count // _BLOCK)
    pad = blocks * _BLOCK - count
    xmin = np.concatenate([xmin, np.repeat(xmin[-1:], pad)])
    w = np.concatenate([w, np.zeros((pad, taps))]).reshape(blocks, _BLOCK, taps)
    xmin = xmin.reshape(blocks, _BLOCK)
    start = xmin.min(axis=1)
    offset = xmin - start[:, None]  # where each output's taps sit in its block's span
    span = int((offset.max(axis=1) + taps).max())
    dense = np.zeros((blocks, _BLOCK, span), dtype=np.float64)
    rows = np.arange(blocks)[:, None, None]
    outs = np.arange(_BLOCK)[None, :, None]
    dense[rows, outs, offset[:, :, None] + np.arange(taps)[None, None, :]] = w
    index = np.minimum(start[:, None] + np.arange(span)[None, :], in_size - 1)  # past the end: weight 0
    lo, hi = int(index.min()), int(index.max()) + 1
    index = index.reshape(-1) - lo
    native = (native[0] - lo, *native[1:])
    native += ((native[0][:, None] * _CHANNELS + np.arange(_CHANNELS, dtype=np.int32)).reshape(-1),
               np.repeat(native[1], _CHANNELS), np.repeat(native[2], _CHANNELS, axis=0))
    dense32 = dense.astype(np.float32)
    if not np.array_equal(dense32, dense):  # PIL's weights have at most 23 significant bits
        raise AssertionError("resampling weights not exact in float32")
    terms = int(np.count_nonzero(dense, axis=2).max())  # taps per output (the padding's products are exact zeros)
    gamma = terms * _UNIT / (1.0 - terms * _UNIT)
    slack = gamma * 255.0 * float(np.abs(dense).sum(axis=2).max()) + _SLACK_MARGIN
    for arr in (dense, dense32, index, *native):
        arr.setflags(write=False)  # shared by every call through the cache
    return AxisPlan(index, dense, dense32, slack, count, (lo, hi), *native)


def _equal_step(length: int, cap: int) -> int:
    """The chunk size that cuts ``length`` into the fewest chunks of at most ``cap`` (at least 1),
    all equal but the last by at most one: no small remainder paying a whole chunk's calls."""
    cap = max(1, cap)
    if length <= cap:
        return cap
    chunks = -(-length // cap)
    return -(-length // chunks)


def _apply(plan: AxisPlan, lines: np.ndarray) -> np.ndarray:
    """Resample axis 0 of ``lines`` (input lines ``plan.lines``, each a row of values) ->
    (count, row length) uint8, rounded and saturated as PIL's ``clip8``."""
    flat = lines.reshape(lines.shape[0], -1)
    if resample_native.available():
        return resample_native.resample_lines(flat, plan.first, plan.taps, plan.coeffs)
    step = _equal_step(flat.shape[1], _MAX_PRODUCT // plan.weights.shape[2] // _BLOCK)
    if flat.shape[1] <= step:
        return _product(plan, flat)
    return np.concatenate([_product(plan, flat[:, c : c + step]) for c in range(0, flat.shape[1], step)], axis=1)


def _product(plan: AxisPlan, flat: np.ndarray) -> np.ndarray:
    gathered = np.take(flat, plan.index, axis=0).astype(np.float32)  # uint8 gathered: a quarter of the bytes
    gathered = gathered.reshape(plan.weights.shape[0], plan.weights.shape[2], -1)
    out = np.matmul(plan.weights32, gathered).reshape(-1, flat.shape[1])[: plan.count]
    # negatives to 0 first (in place): convertScaleAbs saturates at 255 but takes |x|
    out = cv2.threshold(out, 0.0, 0.0, cv2.THRESH_TOZERO, dst=out)[1]
    low = cv2.convertScaleAbs(out, alpha=1.0, beta=-plan.slack)
    high = cv2.convertScaleAbs(out, alpha=1.0, beta=plan.slack)
    _settle(plan, gathered, low, high)
    return low


def _settle(plan: AxisPlan, gathered: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    """Where float32 could not decide the rounding (``low != high``), write the exact value into
    ``low``: the float64 dot product of the same weights and pixels, rounded half up, clipped."""
    flat_low, flat_high = low.reshape(-1), high.reshape(-1)
    whole = flat_low.size - flat_low.size % 8  # compared 8 bytes at a time: a 64-bit word each
    words = np.flatnonzero(flat_low[:whole].view(np.uint64) != flat_high[:whole].view(np.uint64))
    candidates = (words[:, None] * 8 + np.arange(8)).reshape(-1)
    if whole < flat_low.size:
        candidates = np.concatenate([candidates, np.arange(whole, flat_low.size)])
    undecided = candidates[flat_low[candidates] != flat_high[candidates]]
    if undecided.size == 0:
        return
    row, column = np.divmod(undecided, low.shape[1])
    block, output = np.divmod(row, _BLOCK)
    exact = np.einsum("ij,ij->i", plan.weights[block, output], gathered[block, :, column].astype(np.float64))
    flat_low[undecided] = np.clip(np.floor(exact + 0.5), 0.0, 255.0)


def _horizontal(rows: np.ndarray, plan: AxisPlan) -> np.ndarray:
    """The horizontal pass over ``rows`` (y, x, c), in chunks of rows on large images."""
    x0, x1 = plan.lines
    native = resample_native.available()
    if native:
        cap = _NATIVE_CHUNK_BYTES // ((x1 - x0) * _CHANNELS)
    else:
        cap = _CHUNK_VALUES // (plan.index.size * _CHANNELS)
    step = _equal_step(rows.shape[0], cap)
    parts = []
    for r0 in range(0, rows.shape[0], step):
        chunk = rows[r0 : r0 + step]
        if native:
            parts.append(_horizontal_bytes(chunk, plan))
            continue
        columns = cv2.transpose(np.ascontiguousarray(chunk[:, x0:x1]))  # lines are columns
        parts.append(cv2.transpose(_apply(plan, columns).reshape(plan.count, -1, _CHANNELS)))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _horizontal_bytes(rows: np.ndarray, plan: AxisPlan) -> np.ndarray:
    """The compiled horizontal pass: ``rows`` as single bytes, transposed so each line is one
    (column, channel) pair (OpenCV transposes 1-byte elements in about two thirds of the time it
    takes for 3-byte pixels, measured), every third line a tap, transposed back."""
    x0, x1 = plan.lines
    flat = rows.reshape(rows.shape[0], -1)[:, x0 * _CHANNELS : x1 * _CHANNELS]
    lines = cv2.transpose(flat)
    out = resample_native.resample_lines(lines, plan.first3, plan.taps3, plan.coeffs3, step=_CHANNELS)
    return cv2.transpose(out).reshape(rows.shape[0], plan.count, _CHANNELS)


def resample_crop(image: np.ndarray, out_h: int, out_w: int, top: int, left: int, crop_h: int, crop_w: int,
                  interpolation: str) -> np.ndarray:
    """``Image.resize((out_w, out_h), filter)`` of an ``HxWx3`` uint8 image, then the crop
    ``[top:top+crop_h, left:left+crop_w]``, computing only the cropped outputs."""
    in_h, in_w = image.shape[:2]
    hplan = axis_plan(in_w, out_w, left, crop_w, interpolation) if in_w != out_w else None
    vplan = axis_plan(in_h, out_h, top, crop_h, interpolation) if in_h != out_h else None
    if vplan is not None and in_h > 100 * in_w:  # Image.resize's order for very tall images
        rows = _apply(vplan, image[vplan.lines[0] : vplan.lines[1]]).reshape(crop_h, in_w, 3)
        return _horizontal(rows, hplan) if hplan is not None else np.ascontiguousarray(rows[:, left : left + crop_w])
    y0, y1 = vplan.lines if vplan is not None else (top, top + crop_h)
    rows = image[y0:y1]
    rows = _horizontal(rows, hplan) if hplan is not None else rows[:, left : left + crop_w]
    if vplan is None:
        return np.ascontiguousarray(rows)
    return _apply(vplan, np.ascontiguousarray(rows)).reshape(crop_h, crop_w, 3)
