"""Read and decode image files into model-ready tensors, turning every failure into a status.

This is the single path from a file on disk to the ``uint8`` RGB crop the IR takes: ``run``,
calibration and validation all call :func:`load_image_tensor`.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeclass.media.imageheader import read_header, looks_truncated
from edgeclass.media.preprocess import PreprocessConfig, fast_resize_and_crop, reduction_factor, resize_and_crop
from edgeclass.results import Status

DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_BYTES = 512 * 1024 * 1024

_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


@dataclass(frozen=True)
class DecodeOptions:
    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse images declaring more pixels (decompression bombs)
    max_bytes: int = DEFAULT_MAX_BYTES
    reduced_decode: bool = True  # decode large JPEGs at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling)


class ImageReadError(Exception):
    """An input that cannot become a tensor; ``status`` is the CSV status column."""

    def __init__(self, status: Status, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def read_bytes(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a file read-only, mapping OS errors to statuses.

    Opened with O_NONBLOCK and checked with fstat first, so a FIFO or device that happens to
    carry an image extension cannot block the run.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        kind = "broken symlink" if os.path.islink(path) else "file not found"
        raise ImageReadError(Status.MISSING, kind) from None
    except PermissionError:
        raise ImageReadError(Status.UNREADABLE, "permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(Status.UNREADABLE, "symlink loop") from None
        raise ImageReadError(Status.UNREADABLE, exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not _is_regular(st.st_mode):
            what = "is a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ImageReadError(Status.UNREADABLE, what)
        if st.st_size > max_bytes:
            raise ImageReadError(Status.TOO_LARGE, f"file is {st.st_size} bytes, limit {max_bytes}")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise ImageReadError(Status.UNREADABLE, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if total > max_bytes:
        raise ImageReadError(Status.TOO_LARGE, f"file grew past the limit of {max_bytes} bytes")
    return b"".join(chunks)


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def decode_image(data: bytes, config: PreprocessConfig, options: DecodeOptions) -> np.ndarray:
    """Decode bytes to an ``HxWx3`` RGB ``uint8`` array (EXIF orientation applied)."""
    return _decode(data, config, options)[0]


def _decode(data: bytes, config: PreprocessConfig, options: DecodeOptions) -> tuple[np.ndarray, int]:
    """Decode bytes; also returns the JPEG DCT reduction factor used (1 when none)."""
    if not data:
        raise ImageReadError(Status.EMPTY, "file is empty (0 bytes)")
    header = read_header(data[:65536])
    if header.pixels is not None:
        if header.width == 0 or header.height == 0:
            raise ImageReadError(Status.CORRUPT, f"{header.format} declares a zero size")
        if header.pixels > options.max_pixels:
            raise ImageReadError(
                Status.TOO_LARGE,
                f"{header.format} declares {header.width}x{header.height} = {header.pixels} pixels, "
                f"limit {options.max_pixels} (--max-pixels)",
            )
    if looks_truncated(header, data):
        raise ImageReadError(Status.CORRUPT, f"truncated {header.format} (no end marker)")
    flags = cv2.IMREAD_COLOR
    factor = 1
    if options.reduced_decode and header.format == "jpeg" and header.width and header.height:
        factor = reduction_factor(header.height, header.width, config)
        flags = _REDUCED_FLAGS.get(factor, cv2.IMREAD_COLOR)
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        raise ImageReadError(Status.CORRUPT, f"decoder error: {str(exc).strip().splitlines()[-1]}") from None
    if image is None:
        what = "not a recognised image" if header.format == "unknown" else f"cannot decode {header.format}"
        raise ImageReadError(Status.CORRUPT, what)
    if image.shape[0] * image.shape[1] > options.max_pixels:
        raise ImageReadError(Status.TOO_LARGE, f"{image.shape[1]}x{image.shape[0]} exceeds --max-pixels")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image, factor


def load_image_tensor(path: str | os.PathLike, config: PreprocessConfig, options: DecodeOptions) -> np.ndarray:
    """File -> model input (``crop_h x crop_w x 3`` RGB ``uint8``). Raises :class:`ImageReadError`."""
    data = read_bytes(path, options.max_bytes)
    image, factor = _decode(data, config, options)
    if factor > 1:  # already approximate (DCT-scaled): finish with the fast area resize
        if config.channel_order == "BGR":
            image = image[..., ::-1]
        return fast_resize_and_crop(np.ascontiguousarray(image), config)
    return prepare_array(image, config)


def prepare_array(image_rgb: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """An already decoded RGB ``uint8`` frame -> model input (used for video frames too)."""
    if config.channel_order == "BGR":
        image_rgb = image_rgb[..., ::-1]
    return resize_and_crop(np.ascontiguousarray(image_rgb), config)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
