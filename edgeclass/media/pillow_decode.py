"""Pillow as the second decoder, for valid files OpenCV cannot decode.

OpenCV reads the common files fast (and stays the only decoder on that path); some valid
variants it refuses: TIFF with LZMA, ZSTD or old-style JPEG compression, 2/4/12-bit grey, 32-bit
integer TIFF, some palette and low-bit variants. :func:`decode_with_pillow` reads those the way
OpenCV reads the others: the first frame (GIF, APNG, multi-page TIFF), EXIF orientation applied
(OpenCV's ``IMREAD_COLOR`` applies it for JPEG, PNG, WebP and TIFF: here
``ImageOps.exif_transpose``), the same pixel limit (checked on the declared size before any
pixel is decoded, and Pillow's own bomb check set from ``--max-pixels``), and an ``HxWx3`` BGR
``uint8`` array for the same preprocessing.

More than 8 bits per sample become 8 bits by :func:`to_uint8` (also used for OpenCV's own
any-depth read of float TIFFs, which Pillow cannot open):

* unsigned integers of ``n`` bits keep their top 8 bits (``v >> (n - 8)``), as OpenCV converts
  16-bit images; the bit depth is the file's (a 12-bit TIFF's values reach 4095, not 65535);
* floats are taken as normalised, 0.0 black and 1.0 white (the convention of float TIFF, PFM
  and EXR): ``round(255 * v)``. Data outside [0, 1] (HDR radiance, scientific units) have no
  white point: they are stretched linearly from their minimum to their maximum instead; NaN is 0;
* signed or 32-bit integers have no white point either: stretched from minimum to maximum.

PIL is imported on the first fallback only, so files OpenCV reads never pay for it.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from edgeclass.results import Status


class FallbackError(Exception):
    """Pillow could not make an image of the bytes; ``status`` is what it points to."""

    def __init__(self, status: Status, message: str, identified: bool = True):
        super().__init__(message)
        self.status = status
        self.message = message
        self.identified = identified  # False: Pillow did not recognise the bytes as its format


# Pillow format names tried for each format imageheader.read_header names (APNG is Pillow's
# PNG plugin, MPO its JPEG; HEIF only when a plugin such as pillow-heif registered it).
_PILLOW_FORMATS = {"jpeg": ("JPEG", "MPO"), "png": ("PNG",), "gif": ("GIF",), "bmp": ("BMP", "DIB"),
                   "webp": ("WEBP",), "tiff": ("TIFF",), "avif": ("AVIF",), "heif": ("HEIF", "AVIF")}
# Bytes read_header does not know: raster formats Pillow recognises by their own signature.
# (Never EPS: Pillow runs Ghostscript for it.)
_OTHER_FORMATS = ("PPM", "TGA", "ICO", "PCX", "QOI", "JPEG2000", "SGI", "DDS", "PSD", "SUN", "XBM", "XPM")


def decode_with_pillow(data: bytes, fmt: str, max_pixels: int) -> np.ndarray:
    """``data`` (format ``fmt`` as read_header named it) -> ``HxWx3`` BGR ``uint8``: first frame,
    EXIF orientation applied. Raises :class:`FallbackError`."""
    from PIL import Image, UnidentifiedImageError

    _setup(Image)
    # --max-pixels is checked below on the declared size, before any pixel is decoded (open reads
    # the header only). Pillow's own process-wide limit is only ever raised to it, never lowered:
    # lowering it would limit every other use of Pillow in the process.
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels
    formats = [name for name in _PILLOW_FORMATS.get(fmt, _OTHER_FORMATS) if name in Image.OPEN]
    if not formats:
        raise FallbackError(Status.UNSUPPORTED, f"Pillow has no {fmt.upper()} decoder", identified=False)
    try:
        image = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError:  # over twice Pillow's own default limit (about 179 MP)
        raise FallbackError(Status.TOO_LARGE, f"the image declares more pixels than Pillow opens "
                            f"({2 * (Image.MAX_IMAGE_PIXELS or 0)})") from None
    except UnidentifiedImageError:
        raise FallbackError(Status.CORRUPT, "Pillow does not recognise it either", identified=False) from None
    except Exception as exc:  # noqa: BLE001  (a plugin's refusal of untrusted bytes, any type)
        raise _refusal(exc) from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise FallbackError(Status.TOO_LARGE, f"{image.format} declares {width}x{height} = {width * height} "
                                f"pixels, limit {max_pixels} (--max-pixels)")
        try:
            return _to_bgr(image)
        except Exception as exc:  # noqa: BLE001
            raise _refusal(exc) from None


_ready = False


def _setup(Image) -> None:  # noqa: N803  (the PIL.Image module)
    global _ready
    if not _ready:
        Image.init()  # every plugin (and third-party ones such as pillow-heif), once
        # the declared size is checked here against --max-pixels: Pillow's warning is redundant
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        _ready = True


def _refusal(exc: Exception) -> FallbackError:
    text = str(exc) or type(exc).__name__
    status = Status.UNSUPPORTED if "unsupported" in text.lower() else Status.CORRUPT
    return FallbackError(status, f"Pillow: {text}")


def _to_bgr(image) -> np.ndarray:
    """First frame of an open Pillow image, EXIF orientation applied -> BGR ``uint8``."""
    from PIL import ImageOps

    bits = _declared_bits(image)
    image = ImageOps.exif_transpose(image)  # loads the pixels (frame 0)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        grey = to_uint8(np.asarray(image), bits)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        image = image.convert("RGB")  # 1, L, P, PA, LA, RGBA, CMYK, YCbCr, LAB...
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _declared_bits(image) -> int | None:
    """Bits per sample the file declares, when Pillow keeps them in a wider mode (TIFF's 12-bit
    samples arrive in ``I;16`` unscaled)."""
    tags = getattr(image, "tag_v2", None)
    if tags is not None and 258 in tags:
        bits = tags[258]
        return int(bits[0] if isinstance(bits, tuple) else bits)
    return None


def to_uint8(array: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Samples of any depth -> ``uint8`` (rules in the module docstring). ``bits``: the unsigned
    samples' declared depth, when less than their type's."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "u" and array.dtype.itemsize <= 2:
        depth = min(bits or 8 * array.dtype.itemsize, 8 * array.dtype.itemsize)
        if depth <= 8:
            return array.astype(np.uint8)
        return np.minimum(array >> (depth - 8), 255).astype(np.uint8)
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(array.shape, np.uint8)
    lo, hi = values[finite].min(), values[finite].max()
    if array.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        scaled = values * 255.0
    else:
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    scaled[~finite] = 0.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
