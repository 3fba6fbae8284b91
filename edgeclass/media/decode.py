"""Read and decode image files into model-ready tensors, turning every failure into a status.

This is the single path from a file on disk to the ``uint8`` crop the IR takes (BGR, as OpenCV
decodes it; the swap to RGB is inside the IR): ``run``, calibration and validation all call
:func:`load_image_tensor`. OpenCV decodes; Pillow (:mod:`edgeclass.media.pillow_decode`) reads
the valid files OpenCV cannot, and is imported only then.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

DEFAULT_MAX_PIXELS = 100_000_000
# OpenCV refuses, before allocating, any image of any of its codecs declaring more pixels than
# this (read once, when OpenCV starts: so it is set before cv2 is imported). It backs up our own
# header checks for formats whose size we do not parse. `edgeclass run` sets it from
# --max-pixels (imageheader.set_opencv_pixel_limit) before anything imports cv2.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(DEFAULT_MAX_PIXELS))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edgeclass.media.imageheader import (  # noqa: E402
    TRUNCATED,
    ImageHeader,
    describe_tiff,
    image_end,
    read_header,
    tiff_damage,
)
from edgeclass.media.preprocess import (
    PreprocessConfig,
    reduction_factor,
    resize_and_crop,
    to_input_order,
)
from edgeclass.results import Status  # noqa: E402

if TYPE_CHECKING:
    from edgeclass.media.pillow_decode import FallbackError

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


def read_bytes(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
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


def open_regular(path: str | os.PathLike[str]) -> int:
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


def check_readable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`ImageReadError` (missing, unreadable) unless ``path`` is a readable file."""
    os.close(open_regular(path))


def decode_image(data: bytes, config: PreprocessConfig, options: DecodeOptions) -> np.ndarray:
    """Decode bytes to an ``HxWx3`` RGB ``uint8`` array (EXIF orientation applied), for people
    and tests; the model path keeps OpenCV's BGR (:func:`load_image_tensor`)."""
    return np.ascontiguousarray(decode_bgr(data, config, options)[..., ::-1])


def decode_bgr(data: bytes, config: PreprocessConfig, options: DecodeOptions) -> np.ndarray:
    """Decode bytes to BGR, large JPEGs at the DCT scale ``config`` allows (``reduced_decode``).

    OpenCV first (the fast path: nothing else runs when it succeeds); Pillow for the valid files
    OpenCV cannot decode (edgeclass.media.pillow_decode); ``corrupt`` only when neither reads
    them, ``unsupported`` when the format is real but neither has a decoder for its variant."""
    if not data:
        raise ImageReadError(Status.EMPTY, "file is empty (0 bytes)")
    header = read_header(data)
    _check_declared_size(header, options)
    end = image_end(header, data)
    if end == TRUNCATED:
        raise ImageReadError(Status.CORRUPT, f"truncated {header.format} (data ends before the end marker)")
    flags = cv2.IMREAD_COLOR
    if options.reduced_decode and header.format == "jpeg" and header.width and header.height:
        flags = _REDUCED_FLAGS.get(reduction_factor(header.height, header.width, config), cv2.IMREAD_COLOR)
    # data after the end marker (a motion photo's MP4, a camera trailer) is not the image
    buf = np.frombuffer(data, dtype=np.uint8, count=end if end is not None else -1)
    image = _opencv_decode(buf, flags, header)
    if image is None:
        image = _fallback_decode(data if end is None else data[:end], header, options)
    if image.shape[0] * image.shape[1] > options.max_pixels:
        raise ImageReadError(Status.TOO_LARGE, f"{image.shape[1]}x{image.shape[0]} exceeds --max-pixels")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image  # BGR, as decoded: the IR swaps channels itself


def _check_declared_size(header: ImageHeader, options: DecodeOptions) -> None:
    """Refuse a header's impossible or too large size before any decoder allocates."""
    width, pixels = header.width, header.pixels
    if width is None or pixels is None:  # pixels: known exactly when both sides are
        return
    if width == 0 or header.height == 0:
        raise ImageReadError(Status.CORRUPT, f"{header.format} declares a zero size")
    if width < 0:  # a BMP's width is signed
        raise ImageReadError(Status.CORRUPT, f"{header.format} declares a negative width ({width})")
    if pixels > options.max_pixels:
        raise ImageReadError(
            Status.TOO_LARGE,
            f"{header.format} declares {header.width}x{header.height} = {header.pixels} pixels, "
            f"limit {options.max_pixels} (--max-pixels)",
        )


def _opencv_decode(buf: np.ndarray, flags: int, header: ImageHeader) -> np.ndarray | None:
    """OpenCV's decode, None when it cannot; a refusal by its own pixel limit is ``too_large``."""
    try:
        return cv2.imdecode(buf, flags)
    except cv2.error as exc:
        if exc.func == "validateInputImageSize":  # OPENCV_IO_MAX_IMAGE_PIXELS refused it unread
            what = "the image" if header.format == "unknown" else header.format
            raise ImageReadError(Status.TOO_LARGE, f"{what} declares more pixels than the limit "
                                 f"{os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS')} (--max-pixels)") from None
        return None


def _fallback_decode(data: bytes, header: ImageHeader, options: DecodeOptions) -> np.ndarray:
    """Pillow, then (TIFF) OpenCV at the file's own depth; the reason neither could, as a status."""
    from edgeclass.media.pillow_decode import FallbackError, decode_with_pillow, to_uint8

    try:
        return decode_with_pillow(data, header.format, options.max_pixels)
    except FallbackError as exc:
        failure = exc
    if header.format == "tiff" and failure.status is not Status.TOO_LARGE:
        # float RGB TIFF: Pillow has no mode for it; OpenCV reads it at its own depth
        image = _opencv_decode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR, header)
        if image is not None:
            return to_uint8(image[:, :, :3] if image.ndim == 3 else image)
    raise ImageReadError(*_failure(header, data, failure))


def _failure(header: ImageHeader, data: bytes, failure: FallbackError) -> tuple[Status, str]:
    """Status and message for bytes neither OpenCV nor Pillow decoded (``failure``: Pillow's)."""
    fmt = header.format
    if failure.status is Status.TOO_LARGE:
        return failure.status, failure.message
    if fmt in ("heif", "avif") and not failure.identified:
        return Status.UNSUPPORTED, (f"{fmt.upper()} images cannot be decoded here (neither OpenCV nor Pillow "
                                    "reads them): convert them to JPEG or PNG")
    if fmt == "unknown":
        return Status.CORRUPT, ("not a recognised image" if not failure.identified
                                else f"cannot decode the image ({failure.message})")
    if fmt == "tiff":
        damage = tiff_damage(data)
        if damage is not None:
            return Status.CORRUPT, f"truncated or broken TIFF ({damage})"
        what = describe_tiff(data)
        if not failure.identified or failure.status is Status.UNSUPPORTED:
            return Status.UNSUPPORTED, f"{what}: neither OpenCV nor Pillow decodes this TIFF variant"
        return Status.CORRUPT, f"cannot decode {what} ({failure.message})"
    if failure.status is Status.UNSUPPORTED:
        return Status.UNSUPPORTED, f"{fmt}: {failure.message} (OpenCV cannot decode it either)"
    return Status.CORRUPT, f"cannot decode {fmt}" + (f" ({failure.message})" if failure.identified else "")


def load_image_tensor(path: str | os.PathLike[str], config: PreprocessConfig, options: DecodeOptions) -> np.ndarray:
    """File -> model input (``crop_h x crop_w x 3`` ``uint8`` in the IR's input channel order).
    Raises :class:`ImageReadError`."""
    data = read_bytes(path, options.max_bytes)
    return prepare_array(decode_bgr(data, config, options), config)


def prepare_array(image_bgr: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """An already decoded BGR ``uint8`` frame (as OpenCV gives it) -> model input (video frames too)."""
    return to_input_order(resize_and_crop(np.ascontiguousarray(image_bgr), config), config)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


# what OpenCV or Pillow reads (GIF, APNG: the first frame; AVIF: OpenCV or Pillow when built with
# libavif). HEIC is not listed: neither reads it (named explicitly, it is an `unsupported` row).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".bmp", ".dib", ".webp",
                              ".tif", ".tiff", ".avif", ".pbm", ".pgm", ".ppm", ".pnm"})
