"""Read an image's format and declared size from its first bytes, without decoding it.

Used to refuse decompression bombs before a decoder allocates anything, to choose the JPEG
DCT scale, and to spot truncated files that decoders would silently pad with grey.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageHeader:
    format: str  # "jpeg", "png", "gif", "bmp", "webp", "tiff" or "unknown"
    width: int | None = None
    height: int | None = None

    @property
    def pixels(self) -> int | None:
        if self.width is None or self.height is None:
            return None
        return self.width * self.height


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
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ImageHeader("tiff")
    return ImageHeader("unknown")


def looks_truncated(header: ImageHeader, data: bytes) -> bool:
    """True when a JPEG lacks its end-of-image marker or a PNG its IEND chunk."""
    tail = data[-4096:].rstrip(b"\x00")
    if header.format == "jpeg":
        return b"\xff\xd9" not in tail
    if header.format == "png":
        return b"IEND" not in tail
    return False
