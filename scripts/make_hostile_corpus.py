#!/usr/bin/env python3
"""Write a corpus of hostile (and odd but valid) image files, each with the status `edgeclass run`
must give it. Used by tests/test_hostile.py; run by hand to get the files:

    python scripts/make_hostile_corpus.py /tmp/corpus     # prints name -> expected status

Everything is generated (OpenCV, Pillow, a few bytes written by hand); nothing is downloaded.
:func:`variant_files` writes one picture in the encodings OpenCV cannot decode (Pillow reads them)
and in every header layout edgeclass parses itself (BMP header versions, TIFF byte orders, BigTIFF):
tests classify them and check the header parser against Pillow on them.
"""

from __future__ import annotations

import io
import json
import lzma
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


# ----------------------------------------------------------------------------- encoders by hand
_TIFF_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8


def tiff(width: int, height: int, strip: bytes, bits: tuple[int, ...], photometric: int, *, sample_format: int = 1,
         order: str = "<", compression: int = 1, extra: tuple = (), bigtiff: bool = False) -> bytes:
    """A one-strip TIFF: ``strip`` holds the (already compressed) samples; ``extra``: (tag, type, values)."""
    tags = {256: (4, [width]), 257: (4, [height]), 258: (3, list(bits)), 259: (3, [compression]),
            262: (3, [photometric]), 273: (4, [0]), 277: (3, [len(bits)]), 278: (4, [height]),
            279: (4, [len(strip)]), 284: (3, [1]), 339: (3, [sample_format] * len(bits))}
    for tag, kind, values in extra:
        tags[tag] = (kind, list(values))
    entry, inline, word = (20, 8, "Q") if bigtiff else (12, 4, "I")
    first = 16 if bigtiff else 8
    blob_at = first + (8 if bigtiff else 2) + len(tags) * entry + inline
    tags[273] = (4, [blob_at])  # the strip first, then the values too long to sit in their entry
    blobs = strip + b"\0" * (len(strip) % 2)
    entries = []
    for tag in sorted(tags):
        kind, values = tags[tag]
        raw = struct.pack(f"{order}{len(values)}{_TIFF_TYPES[kind]}", *values)
        if len(raw) > inline:
            raw, blobs = struct.pack(order + word, blob_at + len(blobs)), blobs + raw + b"\0" * (len(raw) % 2)
        entries.append(struct.pack(f"{order}HH{word}", tag, kind, len(values)) + raw.ljust(inline, b"\0"))
    magic = b"II" if order == "<" else b"MM"
    head = magic + (struct.pack(order + "HHHQ", 43, 8, 0, first) if bigtiff else struct.pack(order + "HI", 42, first))
    count = struct.pack(order + ("Q" if bigtiff else "H"), len(entries))
    return head + count + b"".join(entries) + struct.pack(order + word, 0) + blobs


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Rows of unsigned samples packed most significant bit first, each row padded to a byte."""
    h, w = values.shape
    row_bits = np.unpackbits(values.astype(">u2").view(np.uint8).reshape(h, w, 2), axis=2)[:, :, 16 - bits:]
    return np.packbits(row_bits.reshape(h, w * bits), axis=1).tobytes()


def bmp(rgb: np.ndarray, header_size: int = 40, top_down: bool = False) -> bytes:
    """A 24-bit BMP with any DIB header: 12 (OS/2 1.x: 16-bit sizes), 16-64 (OS/2 2.x), 40, 52, 56,
    108, 124 (Windows: 32-bit signed sizes, negative height = rows top-down)."""
    h, w, _ = rgb.shape
    rows = rgb[:, :, ::-1] if top_down else rgb[::-1, :, ::-1]
    stride = (w * 3 + 3) & ~3
    pixels = b"".join(row.tobytes().ljust(stride, b"\0") for row in rows)
    if header_size == 12:
        dib = struct.pack("<IHHHH", 12, w, h, 1, 24)
    else:
        dib = struct.pack("<IiiHHIIiiII", header_size, w, -h if top_down else h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
        dib = dib[:header_size].ljust(header_size, b"\0")
    return _bmp_file(dib, pixels)


def _bmp_file(dib: bytes, pixels: bytes) -> bytes:
    offset = 14 + len(dib)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + dib + pixels


def _palette(rgb: np.ndarray, colours: int = 256) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    image = Image.fromarray(rgb).quantize(colours)
    palette = np.zeros((colours, 3), np.uint8)
    used = np.array(image.getpalette()[: 3 * colours], np.uint8).reshape(-1, 3)
    palette[: len(used)] = used
    return np.asarray(image), palette


def os2_palette_bmp(rgb: np.ndarray) -> bytes:
    """An 8-bit OS/2 1.x bitmap (BITMAPCOREHEADER, 3-byte palette entries), like bmpsuite's pal8os2.bmp."""
    index, palette = _palette(rgb)
    h, w = index.shape
    stride = (w + 3) & ~3
    pixels = b"".join(row.tobytes().ljust(stride, b"\0") for row in index[::-1])
    return _bmp_file(struct.pack("<IHHHH", 12, w, h, 1, 8) + palette[:, ::-1].tobytes(), pixels)


def rle8_bmp(rgb: np.ndarray) -> bytes:
    """An 8-bit run-length-encoded BMP (BI_RLE8)."""
    index, palette = _palette(rgb)
    h, w = index.shape
    out = bytearray()
    for row in index[::-1]:
        i = 0
        while i < w:
            j = i
            while j < w and j - i < 255 and row[j] == row[i]:
                j += 1
            out += bytes([j - i, row[i]])
            i = j
        out += b"\0\0"  # end of line
    out += b"\0\1"  # end of bitmap
    quads = np.hstack([palette[:, ::-1], np.zeros((256, 1), np.uint8)]).tobytes()
    return _bmp_file(struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 1, len(out), 2835, 2835, 256, 0) + quads, bytes(out))


def pillow_bytes(rgb_or_image, fmt: str, **options) -> bytes:
    from PIL import Image

    image = rgb_or_image if isinstance(rgb_or_image, Image.Image) else Image.fromarray(rgb_or_image)
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def old_jpeg_tiff(rgb: np.ndarray) -> bytes:
    """An old-style JPEG TIFF (compression 6), its strip a whole JFIF stream that
    JPEGInterchangeFormat (513) points at, as old scanners wrote them."""
    h, w, _ = rgb.shape
    jpeg = _jpeg(np.ascontiguousarray(rgb[:, :, ::-1]))
    def build(at: int) -> bytes:
        return tiff(w, h, jpeg, (8, 8, 8), 6, compression=6, extra=((513, 4, [at]), (514, 4, [len(jpeg)]), (530, 3, [2, 2])))
    return build(build(0).index(jpeg))


def animated(frames: list[np.ndarray], fmt: str, **options) -> bytes:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    return pillow_bytes(images[0], fmt, save_all=True, append_images=images[1:], duration=100, loop=0, **options)


def variant_files(rgb: np.ndarray) -> dict[str, tuple[bytes, str, str]]:
    """The RGB picture ``rgb`` in encodings OpenCV cannot decode and in every header layout:
    name -> (bytes, expected status, piece of the expected error). Grey encodings hold
    ``grey_of(rgb)``."""
    h, w, _ = rgb.shape
    grey = grey_of(rgb)
    rgb16 = rgb.astype(np.uint16) * 257
    flat = [np.full_like(rgb, c) for c in (30, 220)]
    files = {
        # OpenCV: "cannot handle images with 12-bit samples", "bitsperpixel value is 4 should be palette"
        "grey12.tif": tiff(w, h, pack_bits(grey.astype(np.uint16) << 4 | 0xF, 12), (12,), 1),
        "grey4.tif": tiff(w, h, pack_bits(grey >> 4, 4), (4,), 1),
        "grey2_white_is_zero.tif": tiff(w, h, pack_bits(3 - (grey >> 6), 2), (2,), 0),
        "grey_float.tif": tiff(w, h, (grey / 255.0).astype("<f4").tobytes(), (32,), 1, sample_format=3),
        "grey_int32.tif": tiff(w, h, (grey.astype("<i4") * 1000 - 50_000).tobytes(), (32,), 1, sample_format=2),
        # OpenCV's libtiff has no LZMA, ZSTD or old-style JPEG codec; Pillow's has
        "rgb_lzma.tif": tiff(w, h, lzma.compress(rgb.tobytes()), (8, 8, 8), 2, compression=34925),
        "rgb16_lzma.tif": tiff(w, h, lzma.compress(rgb16.astype("<u2").tobytes()), (16, 16, 16), 2, compression=34925),
        "rgb_old_jpeg.tif": old_jpeg_tiff(rgb),
        # Pillow has no mode for float RGB: OpenCV reads it at its own depth
        "rgb_float.tif": tiff(w, h, (rgb / 255.0).astype("<f4").tobytes(), (32, 32, 32), 2, sample_format=3),
        "rgb_float_mm.tif": tiff(w, h, (rgb / 255.0).astype(">f4").tobytes(), (32, 32, 32), 2, sample_format=3, order=">"),
        # byte orders, BigTIFF
        "rgb16_mm.tif": tiff(w, h, rgb16.astype(">u2").tobytes(), (16, 16, 16), 2, order=">"),
        "rgb_bigtiff.tif": tiff(w, h, rgb.tobytes(), (8, 8, 8), 2, bigtiff=True),
        "rgb_bigtiff_mm.tif": tiff(w, h, rgb.tobytes(), (8, 8, 8), 2, bigtiff=True, order=">"),
        # first frames
        "animated.png": animated([rgb, *flat], "PNG"),  # APNG
        "animated.gif": animated([rgb, *flat], "GIF"),
        # bitmaps
        "os2_palette.bmp": os2_palette_bmp(rgb),
        "rle8.bmp": rle8_bmp(rgb),
        "os2.bmp": bmp(rgb, 12),
    }
    for size in (40, 52, 56, 64, 108, 124):
        files[f"v{size}.bmp"] = bmp(rgb, size)
        files[f"v{size}_top_down.bmp"] = bmp(rgb, size, top_down=True)
    expected = {name: (data, "ok", "") for name, data in files.items()}
    # neither reads half floats: a real format, unsupported (not corrupt)
    half = tiff(w, h, (rgb / 255.0).astype("<f2").tobytes(), (16, 16, 16), 2, sample_format=3)
    expected["rgb_half_float.tif"] = (half, "unsupported", "16-bit float")
    expected["os2v2_16.bmp"] = (bmp(rgb, 16), "unsupported", "BMP header")  # a 16-byte OS/2 2.x header
    return expected


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """The grey picture the grey encodings of :func:`variant_files` hold."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def noisy_files(img: np.ndarray) -> dict[str, tuple[bytes, str, str]]:
    """Files on which libpng, libjpeg and libtiff print warnings of their own (damaged, or odd but
    readable): name -> (bytes, expected status, piece of the expected error)."""
    png = _png(img)
    jpeg = bytearray(_jpeg(img))
    scan = jpeg.index(b"\xff\xda") + 200
    garbled = bytes(jpeg[:scan]) + bytes(range(7, 247, 6)) + bytes(jpeg[scan + 40 :])
    iccp = _png_chunk(b"iCCP", b"bogus\0\0" + zlib.compress(b"not a profile" * 20))
    text = bytearray(_png_chunk(b"tEXt", b"Comment\0hello"))
    text[-1] ^= 1  # bad CRC
    idat = png.index(b"IDAT") - 4
    broken_idat = bytearray(png)
    broken_idat[idat + 10 : idat + 40] = bytes(30)
    h, w, _ = img.shape
    rgb = np.ascontiguousarray(img[:, :, ::-1])
    strip = tiff(w, h, rgb.tobytes(), (8, 8, 8), 2, extra=((65000, 3, [1]),))  # unknown tag: a libtiff warning
    lzma_tif = tiff(w, h, lzma.compress(rgb.tobytes()), (8, 8, 8), 2, compression=34925)
    lzma_garbled = lzma_tif[:300] + bytes(40) + lzma_tif[340:]
    gif = pillow_bytes(rgb, "GIF")
    return {
        "garbled_scan.jpg": (garbled, "ok", ""),  # "Corrupt JPEG data: ... extraneous bytes", decodes
        "bad_iccp.png": (png[:33] + iccp + png[33:], "ok", ""),  # "libpng warning: iCCP: ..."
        "bad_text_crc.png": (png[: png.index(b"IEND") - 4] + bytes(text) + png[png.index(b"IEND") - 4 :], "ok", ""),
        "broken_idat.png": (bytes(broken_idat), "corrupt", "cannot decode png"),  # "libpng error: ..."
        "unknown_tag.tif": (strip, "ok", ""),
        "garbled_lzma.tif": (lzma_garbled, "corrupt", "LZMA"),  # "LZMADecode: ..." from Pillow's libtiff
        "cut_strip.tif": (strip[: len(strip) - 5000], "corrupt", "truncated or broken TIFF"),
        "cut.gif": (gif[: len(gif) // 2], "corrupt", "cannot decode gif"),
        "cut.bmp": (bmp(rgb)[:3000], "corrupt", "cannot decode bmp"),
    }


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
    # valid files OpenCV cannot decode (Pillow reads them), header layouts, library noise
    for name, (data, status, message) in {**variant_files(img[:, :, ::-1].copy()), **noisy_files(img)}.items():
        put(name, data, status, message)
    put("pillow_only.tga", pillow_bytes(img[:, :, ::-1].copy(), "TGA"), "ok")  # no signature, no OpenCV decoder
    return expected


def main() -> None:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
    expected = make_corpus(dest)
    print(json.dumps({k: v[0] for k, v in expected.items()}, indent=1))


if __name__ == "__main__":
    main()
