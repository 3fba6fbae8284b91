"""Process settings for decode workers (``run``, ``compare``, Ray actors): made once, before the
workers start; nothing is changed per image.

* OpenCV's own thread pool: one thread per call when ``--threads`` is given. The decode workers
  are the parallelism, so library pools cannot oversubscribe the cores the user granted. (The
  resampler's matrix products are kept below the size at which NumPy's BLAS lends threads.)
* glibc's allocator keeps freed memory for reuse (``mallopt``): a decoded photo and the
  resampler's temporaries are megabytes each, above glibc's dynamic mmap threshold and trim
  threshold, so by default every image maps fresh pages and returns them to the kernel, paying
  a page fault per 4 KiB (thousands per 1080p image) for memory it had a moment before. With a
  fixed 32 MiB mmap threshold (glibc's maximum) and a trim threshold of 1 GiB, the workers'
  buffers are reused from the heap. The cost: the process keeps its peak heap (bounded by the
  pipeline's window of images in flight) instead of shrinking between images. Other C libraries
  (musl) are left as they are.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value (DEFAULT_MMAP_THRESHOLD_MAX, 64-bit)
_TRIM_THRESHOLD = 1 << 30


def prepare_decode_workers(threads: int | None) -> None:
    """For the rest of the process: see the module docstring. ``threads``: ``--threads`` (None:
    OpenCV keeps its pool)."""
    if threads:
        import cv2

        cv2.setNumThreads(1)
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """glibc only: reuse freed heap memory instead of returning it to the kernel. True if set."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False  # not glibc
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
