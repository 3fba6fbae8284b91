"""Read and decode image files into model-ready tensors, turning every failure into a status.

This is the single path from a file on disk to the ``uint8`` crop the IR takes (BGR, as OpenCV
decodes it; the swap to RGB is inside the IR): ``run``, calibration and validation all call
:func:`load_image_tensor`.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_PIXELS = 100_000_000
# OpenCV refuses, before allocating, any image of any of its codecs declaring more pixels than
# this (read once, when OpenCV starts: so it is set before cv2 is imported). It backs up our own
# header checks for formats whose size we do not parse. `edgeclass run` sets it from
# --max-pixels (imageheader.set_opencv_pixel_limit) before anything imports cv2.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(DEFAULT_MAX_PIXELS))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edgeclass.media.imageheader import TRUNCATED, image_end, read_header  # noqa: E402
from edgeclass.media.preprocess import (
    PreprocessConfig,
    fast_resize_and_crop,
    reduction_factor,
    resize_and_crop,
    to_input_order,
)
from edgeclass.results import Status  # noqa: E402

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
    fd = open_regular(path)
    try:
        st = os.fstat(fd)
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


def open_regular(path: str | os.PathLike) -> int:
    """Open a regular file read-only (never blocking on a FIFO or device); OS errors become
    ``missing`` or ``unreadable``. Used for images, and to check a video file before OpenCV
    (whose failure would not say why)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        kind = "broken symlink" if os.path.islink(path) else "file not found"
        raise ImageReadError(Status.MISSING, kind) from None
    except PermissionError:
        raise ImageReadError(Status.UNREADABLE, "permission denied") from None
    except (OSError, ValueError) as exc:
        if getattr(exc, "errno", None) == errno.ELOOP:
            raise ImageReadError(Status.UNREADABLE, "symlink loop") from None
        raise ImageReadError(Status.UNREADABLE, getattr(exc, "strerror", None) or str(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise ImageReadError(Status.UNREADABLE, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "is a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ImageReadError(Status.UNREADABLE, what)
    return fd


def check_readable(path: str | os.PathLike) -> None:
    """Raise :class:`ImageReadError` (missing, unreadable) unless ``path`` is a readable file."""
    os.close(open_regular(path))


def decode_image(data: bytes, config: PreprocessConfig, options: DecodeOptions) -> np.ndarray:
    """Decode bytes to an ``HxWx3`` RGB ``uint8`` array (EXIF orientation applied), for people
    and tests; the model path keeps OpenCV's BGR (:func:`load_image_tensor`)."""
    return np.ascontiguousarray(_decode(data, config, options)[0][..., ::-1])


def _decode(data: bytes, config: PreprocessConfig, options: DecodeOptions) -> tuple[np.ndarray, int]:
    """Decode bytes to BGR; also returns the JPEG DCT reduction factor used (1 when none)."""
    if not data:
        raise ImageReadError(Status.EMPTY, "file is empty (0 bytes)")
    header = read_header(data)
    if header.pixels is not None:
        if header.width == 0 or header.height == 0:
            raise ImageReadError(Status.CORRUPT, f"{header.format} declares a zero size")
        if header.pixels > options.max_pixels:
            raise ImageReadError(
                Status.TOO_LARGE,
                f"{header.format} declares {header.width}x{header.height} = {header.pixels} pixels, "
                f"limit {options.max_pixels} (--max-pixels)",
            )
    end = image_end(header, data)
    if end == TRUNCATED:
        raise ImageReadError(Status.CORRUPT, f"truncated {header.format} (data ends before the end marker)")
    flags = cv2.IMREAD_COLOR
    factor = 1
    if options.reduced_decode and header.format == "jpeg" and header.width and header.height:
        factor = reduction_factor(header.height, header.width, config)
        flags = _REDUCED_FLAGS.get(factor, cv2.IMREAD_COLOR)
    # data after the end marker (a motion photo's MP4, a camera trailer) is not the image
    buf = np.frombuffer(data, dtype=np.uint8, count=end if end is not None else -1)
    try:
        image = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        if exc.func == "validateInputImageSize":  # OPENCV_IO_MAX_IMAGE_PIXELS refused it unread
            what = "the image" if header.format == "unknown" else header.format
            raise ImageReadError(Status.TOO_LARGE, f"{what} declares more pixels than the limit "
                                 f"{os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS')} (--max-pixels)") from None
        raise ImageReadError(Status.CORRUPT, f"decoder error: {(exc.err or str(exc)).strip()}") from None
    if image is None:
        if header.format in ("heif", "avif"):
            raise ImageReadError(Status.UNSUPPORTED, f"{header.format.upper()} images cannot be decoded here "
                                 "(OpenCV has no decoder for them): convert them to JPEG or PNG")
        what = "not a recognised image" if header.format == "unknown" else f"cannot decode {header.format}"
        raise ImageReadError(Status.CORRUPT, what)
    if image.shape[0] * image.shape[1] > options.max_pixels:
        raise ImageReadError(Status.TOO_LARGE, f"{image.shape[1]}x{image.shape[0]} exceeds --max-pixels")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image, factor  # BGR, as decoded: the IR swaps channels itself


def load_image_tensor(path: str | os.PathLike, config: PreprocessConfig, options: DecodeOptions) -> np.ndarray:
    """File -> model input (``crop_h x crop_w x 3`` ``uint8`` in the IR's input channel order).
    Raises :class:`ImageReadError`."""
    data = read_bytes(path, options.max_bytes)
    image, factor = _decode(data, config, options)
    if factor > 1:  # already approximate (DCT-scaled): finish with the fast area resize
        return to_input_order(fast_resize_and_crop(image, config), config)
    return prepare_array(image, config)


def prepare_array(image_bgr: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """An already decoded BGR ``uint8`` frame (as OpenCV gives it) -> model input (video frames too)."""
    return to_input_order(resize_and_crop(np.ascontiguousarray(image_bgr), config), config)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
