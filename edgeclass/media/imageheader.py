"""Read an image's format and declared size from its bytes, without decoding it.

Used to refuse decompression bombs before a decoder allocates anything, to choose the JPEG
DCT scale, and to find where a JPEG or PNG really ends (:func:`image_end`): data after the end
marker (phone *motion photos* append an MP4, some cameras a trailer) is not the image, and a
file whose structure runs out before its end marker is truncated (decoders would silently pad
it with grey).
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageHeader:
    format: str  # "jpeg", "png", "gif", "bmp", "webp", "tiff", "heif", "avif" or "unknown"
    width: int | None = None
    height: int | None = None

    @property
    def pixels(self) -> int | None:
        if self.width is None or self.height is None:
            return None
        return self.width * self.height


_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg_len = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in _JPEG_SOF and i + 9 <= n:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + seg_len
    return None


def read_header(data: bytes) -> ImageHeader:
    """Identify ``data`` (the whole file or its first few KB)."""
    if data[:3] == b"\xff\xd8\xff":
        size = _jpeg_size(data)
        return ImageHeader("jpeg", *size) if size else ImageHeader("jpeg")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return ImageHeader("png", width, height)
        return ImageHeader("png")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return ImageHeader("gif", width, height)
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return ImageHeader("bmp", abs(width), abs(height))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF)
        if chunk == b"VP8L":
            b = data[21:25]
            width = 1 + (((b[1] & 0x3F) << 8) | b[0])
            height = 1 + (((b[3] & 0x0F) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
            return ImageHeader("webp", width, height)
        if chunk == b"VP8X":
            width = 1 + int.from_bytes(data[24:27], "little")
            height = 1 + int.from_bytes(data[27:30], "little")
            return ImageHeader("webp", width, height)
        return ImageHeader("webp")
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return ImageHeader("avif" if data[8:12] in (b"avif", b"avis") else "heif")
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        size = _tiff_size(data)
        return ImageHeader("tiff", *size) if size else ImageHeader("tiff")
    return ImageHeader("unknown")


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first IFD (the page decoders read)."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
        found: dict[int, int] = {}
        for k in range(min(count, 512)):
            at = ifd + 2 + 12 * k
            tag, kind = struct.unpack(order + "HH", data[at : at + 4])
            if tag in (256, 257):
                fmt = "H" if kind == 3 else "I"
                (found[tag],) = struct.unpack(order + fmt, data[at + 8 : at + 8 + struct.calcsize(fmt)])
    except struct.error:
        return None
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


# In JPEG entropy-coded data a 0xFF byte is followed by 0x00 (stuffing), a restart marker
# (0xD0-0xD7) or more 0xFF fill bytes; anything else is a real marker.
_JPEG_MARKER_IN_SCAN = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")
TRUNCATED = -1  # image_end(): the structure ran out before the end marker


def image_end(header: ImageHeader, data: bytes) -> int | None:
    """Offset just after the image's end marker (JPEG EOI, PNG IEND chunk); ``TRUNCATED`` when
    the file's own structure runs out before it; None when the format has no end marker or its
    structure is not understood (the decoder then decides)."""
    if header.format == "jpeg":
        return _jpeg_end(data)
    if header.format == "png":
        return _png_end(data)
    return None


def _jpeg_end(data: bytes) -> int | None:
    i, n = 2, len(data)
    while True:
        start = i
        while i < n and data[i] == 0xFF:  # a marker, maybe after fill bytes
            i += 1
        if i >= n:
            return TRUNCATED
        if i == start:
            return None  # no marker where one must be: let the decoder judge
        marker = data[i]
        if marker == 0xD9:
            return i + 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 1
            continue
        if i + 3 > n:
            return TRUNCATED
        seg_end = i + 1 + struct.unpack(">H", data[i + 1 : i + 3])[0]
        if seg_end > n:
            return TRUNCATED
        if marker != 0xDA:  # not start-of-scan: skip the segment
            i = seg_end
            continue
        m = _JPEG_MARKER_IN_SCAN.search(data, seg_end)
        if m is None:
            return TRUNCATED
        i = m.end() - 2  # the 0xFF before the marker


def _png_end(data: bytes) -> int | None:
    i, n = 8, len(data)
    while True:
        if i + 8 > n:
            return TRUNCATED
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            return TRUNCATED
        if kind == b"IEND":
            return end
        i = end


def set_opencv_pixel_limit(max_pixels: int) -> None:
    """OpenCV's own pixel limit for every codec (``OPENCV_IO_MAX_IMAGE_PIXELS``), read once when
    OpenCV starts: call this before anything imports cv2 (``edgeclass run`` does, from
    ``--max-pixels``; this module does not import cv2)."""
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(max_pixels)
