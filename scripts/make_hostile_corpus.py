#!/usr/bin/env python3
"""Write a corpus of hostile (and odd but valid) image files, each with the status `edgeclass run`
must give it. Used by tests/test_hostile.py; run by hand to get the files:

    python scripts/make_hostile_corpus.py /tmp/corpus     # prints name -> expected status

Everything is generated (OpenCV, Pillow, a few bytes written by hand); nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np

# name -> (expected status, a piece of the expected error message or "")
EXPECTED: dict[str, tuple[str, str]] = {}


def _photo(h: int = 120, w: int = 160, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) % 64) * 4], -1)
    return np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, *params: int) -> bytes:
    return cv2.imencode(".jpg", img, list(params))[1].tobytes()


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + _png_chunk(b"IEND", b""))


def _set_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    i = 2
    while out[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + struct.unpack(">H", out[i + 2 : i + 4])[0]
    out[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(out)


def tiff_bomb(width: int, height: int) -> bytes:
    """A little-endian TIFF whose first IFD declares ``width x height`` 8-bit grey pixels."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, 8 + 2 + 12 * 9 + 4), (277, 3, 1), (278, 4, height), (279, 4, 1000)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<I", value) if kind == 4 else struct.pack("<HH", value, 0))
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + b"\0" * 1000


def webp_bomb() -> bytes:
    """A VP8X WebP header declaring 16384 x 16384 (268 M pixels)."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (16383).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _app_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def huge_exif(jpeg: bytes, segments: int = 4) -> bytes:
    """EXIF/XMP-style APP1 segments of 64 KB each before the frame header (the size is past 64 KB)."""
    exif = b"Exif\0\0" + b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 0)
    payload = exif + b"\0" * (65533 - 2 - len(exif))
    return jpeg[:2] + b"".join(_app_segment(0xE1, payload) for _ in range(segments)) + jpeg[2:]


def fake_mp4(size: int = 50_000) -> bytes:
    body = b"\0" * size
    return struct.pack(">I", 24) + b"ftypmp42" + b"\0\0\0\0mp42isom" + struct.pack(">I", 8 + len(body)) + b"mdat" + body


def heic_like() -> bytes:
    """The start of an HEIC file (ftyp heic, a meta box); OpenCV has no HEIF decoder."""
    ftyp = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic"
    return ftyp + struct.pack(">I", 16) + b"meta" + b"\0" * 8 + b"\0" * 2000


def _animated(fmt: str) -> bytes:
    from PIL import Image

    frames = [Image.fromarray(np.full((60, 80, 3), c, np.uint8)) for c in (30, 130, 230)]
    frames[0] = Image.fromarray(_photo(60, 80)[..., ::-1].copy())
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _arithmetic(jpeg: bytes) -> bytes | None:
    """The same JPEG re-coded losslessly with arithmetic coding (jpegtran), if jpegtran exists."""
    import shutil
    import subprocess

    if shutil.which("jpegtran") is None:
        return None
    return subprocess.run(["jpegtran", "-arithmetic"], input=jpeg, capture_output=True, check=True).stdout


def make_corpus(dest: Path) -> dict[str, tuple[str, str]]:
    dest.mkdir(parents=True, exist_ok=True)
    expected: dict[str, tuple[str, str]] = {}
    img = _photo()
    good = _jpeg(img)
    progressive = _jpeg(img, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)

    def put(name: str, data: bytes, status: str, message: str = "") -> None:
        (dest / name).write_bytes(data)
        expected[name] = (status, message)

    # valid images that naive checks call corrupt, or that are odd
    put("motion_photo.jpg", good + fake_mp4(), "ok")  # a phone motion photo: MP4 after the JPEG
    put("camera_trailer.jpg", good + b"\xff\xd8TRAILER" + bytes(range(256)) * 64, "ok")
    put("progressive.jpg", progressive, "ok")
    arithmetic = _arithmetic(good)
    if arithmetic is not None:  # jpegtran from Debian's libjpeg-turbo-progs
        put("arithmetic.jpg", arithmetic, "ok")
    put("huge_exif.jpg", huge_exif(good), "ok")
    put("one_pixel.png", _png(img[:1, :1]), "ok")
    put("one_pixel.jpg", _jpeg(img[:1, :1]), "ok")
    put("strip_65000.png", _png(np.tile(img[:2, :1], (1, 65000, 1))), "ok")
    put("animated.gif", _animated("GIF"), "ok")  # first frame
    put("animated.webp", _animated("WEBP"), "ok")  # first frame
    # decompression bombs: refused from the header, before decoding
    put("bomb.png", png_bomb(), "too_large", "--max-pixels")
    put("bomb.jpg", _set_jpeg_size(good, 60000, 60000), "too_large", "--max-pixels")
    put("bomb_progressive.jpg", _set_jpeg_size(progressive, 60000, 60000), "too_large", "--max-pixels")
    put("bomb_huge_exif.jpg", huge_exif(_set_jpeg_size(good, 60000, 60000)), "too_large", "--max-pixels")
    put("bomb.tif", tiff_bomb(100_000, 100_000), "too_large", "--max-pixels")
    put("bomb_400mp.tiff", tiff_bomb(20_000, 20_000), "too_large", "--max-pixels")
    put("bomb.webp", webp_bomb(), "too_large", "--max-pixels")
    # a format whose size edgeclass does not parse: OpenCV's own limit (OPENCV_IO_MAX_IMAGE_PIXELS)
    put("bomb.ppm", b"P6\n30000 30000\n255\n" + bytes(3000), "too_large", "--max-pixels")
    # broken
    put("truncated.jpg", good[: len(good) // 2], "corrupt", "truncated")
    put("truncated_progressive.jpg", progressive[: len(progressive) // 2], "corrupt", "truncated")
    put("truncated.png", _png(img)[:300], "corrupt", "truncated")
    put("zero.jpg", b"", "empty")
    put("text.jpg", b"hello, I am not an image\n" * 10, "corrupt", "not a recognised image")
    put("photo.heic", heic_like(), "unsupported", "HEIF")
    put("heic_named.jpg", heic_like(), "unsupported", "HEIF")  # phones export HEIC with a .jpg name
    return expected


def main() -> None:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
    expected = make_corpus(dest)
    print(json.dumps({k: v[0] for k, v in expected.items()}, indent=1))


if __name__ == "__main__":
    main()
