"""Read an image's format and declared size from its bytes, without decoding it.

Used to refuse decompression bombs before a decoder allocates anything, to choose the JPEG
DCT scale, and to find where a JPEG or PNG really ends (:func:`image_end`): data after the end
marker (phone *motion photos* append an MP4, some cameras a trailer) is not the image, and a
file whose structure runs out before its end marker is truncated (decoders would silently pad
it with grey).
"""

from __future__ import annotations

import os
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
    if data[:2] == b"BM":
        size = _bmp_size(data)
        return ImageHeader("bmp", *size) if size else ImageHeader("bmp")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_header(data)
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return ImageHeader("avif" if data[8:12] in (b"avif", b"avis") else "heif")
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        ifd = tiff_directory(data)
        if ifd is not None and 256 in ifd and 257 in ifd:
            return ImageHeader("tiff", ifd[256][0], ifd[257][0])
        return ImageHeader("tiff")
    return ImageHeader("unknown")


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a BMP's DIB header. OS/2 1.x (BITMAPCOREHEADER, 12 bytes) stores them
    as unsigned 16-bit values; every later header (Windows 40, 52, 56, 108, 124 bytes; OS/2 2.x
    16 to 64 bytes) as signed 32-bit values, a negative height meaning rows stored top-down.
    A negative width is returned as is (the file is invalid: decode calls it corrupt); another
    header size (text that starts with "BM") gives no size."""
    if len(data) < 18:
        return None
    (dib_size,) = struct.unpack("<I", data[14:18])
    if dib_size == 12 and len(data) >= 22:
        return struct.unpack("<HH", data[18:22])
    if (16 <= dib_size <= 64 or dib_size in (108, 124)) and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return width, abs(height)
    return None


def _webp_header(data: bytes) -> ImageHeader:
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


# TIFF field types whose values are integers: BYTE, SHORT, LONG, SBYTE, SSHORT, SLONG, LONG8, IFD, IFD8
_TIFF_INTS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q", 18: "Q"}
_TIFF_MAX_VALUES = 4096  # values read per tag (strip tables of huge files are cut: enough to check)


def tiff_directory(data: bytes) -> dict[int, tuple[int, ...]] | None:
    """The integer tags of a TIFF's first IFD (the page decoders read), classic or BigTIFF, either
    byte order: ``{tag: values}``. None when the directory runs out of the file."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    try:
        if big:
            (ifd,) = struct.unpack(order + "Q", data[8:16])
            (count,) = struct.unpack(order + "Q", data[ifd : ifd + 8])
            first, entry, inline, count_fmt = ifd + 8, 20, 8, "Q"
        else:
            (ifd,) = struct.unpack(order + "I", data[4:8])
            (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
            first, entry, inline, count_fmt = ifd + 2, 12, 4, "I"
        tags: dict[int, tuple[int, ...]] = {}
        for k in range(min(count, 512)):
            at = first + entry * k
            tag, kind, n = struct.unpack(order + "HH" + count_fmt, data[at : at + entry - inline])
            if kind not in _TIFF_INTS or n == 0:
                continue
            fmt = _TIFF_INTS[kind]
            n = min(n, _TIFF_MAX_VALUES)
            size = n * struct.calcsize(fmt)
            at += entry - inline
            if size > inline:  # the values are elsewhere: the field holds their offset
                (at,) = struct.unpack(order + count_fmt, data[at : at + inline])
            tags[tag] = struct.unpack(f"{order}{n}{fmt}", data[at : at + size])
    except struct.error:
        return None
    return tags


_TIFF_COMPRESSION = {1: "uncompressed", 2: "CCITT RLE", 3: "CCITT G3", 4: "CCITT G4", 5: "LZW",
                     6: "old-style JPEG", 7: "JPEG", 8: "Deflate", 32946: "Deflate", 32773: "PackBits",
                     34712: "JPEG 2000", 34925: "LZMA", 50000: "ZSTD", 50001: "WebP", 52546: "JPEG XL"}
_TIFF_SAMPLE_FORMAT = {1: "", 2: "signed ", 3: "float ", 4: "untyped "}
_TIFF_PHOTOMETRIC = {0: "grey", 1: "grey", 2: "RGB", 3: "palette", 4: "mask", 5: "CMYK", 6: "YCbCr", 8: "CIELab"}


def describe_tiff(data: bytes) -> str:
    """What a TIFF's first page holds, for messages: "TIFF, 3 x 32-bit float samples (RGB), LZMA"."""
    ifd = tiff_directory(data)
    if ifd is None:
        return "TIFF (unreadable directory)"
    bits = ifd.get(258, (1,))
    kind = _TIFF_SAMPLE_FORMAT.get(ifd.get(339, (1,))[0], "")
    spp = ifd.get(277, (len(bits),))[0]
    photometric = _TIFF_PHOTOMETRIC.get(ifd.get(262, (-1,))[0], "unknown colour model")
    compression = ifd.get(259, (1,))[0]
    return (f"TIFF, {spp} x {bits[0]}-bit {kind}samples ({photometric}), "
            f"{_TIFF_COMPRESSION.get(compression, f'compression {compression}')}")


def tiff_damage(data: bytes) -> str | None:
    """Why a TIFF's first page cannot be whole (its directory does not read, or its strips or tiles
    run past the end of the file); None when it looks whole: a file neither decoder reads is then
    an unsupported variant rather than a broken file."""
    ifd = tiff_directory(data)
    if ifd is None:
        return "its first directory cannot be read"
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):
        offsets, counts = ifd.get(offsets_tag), ifd.get(counts_tag)
        if offsets is not None:
            if counts is None or not all(0 < o and o + c <= len(data) for o, c in zip(offsets, counts)):
                return "its image data runs past the end of the file"
            return None
    return "it locates no image data"


TRUNCATED = -1  # image_end(): the structure ran out before the end marker


def image_end(header: ImageHeader, data: bytes) -> int | None:
    """An offset at or after the image's end marker (JPEG EOI, PNG IEND chunk) before which all the
    image's data lies (what follows is a trailer: not the image); ``TRUNCATED`` when the file's
    own structure runs out before its end marker; None when the format has no end marker or its
    structure is not understood (the decoder then decides)."""
    if header.format == "jpeg":
        return _jpeg_end(data)
    if header.format == "png":
        return _png_end(data)
    return None


def _jpeg_end(data: bytes) -> int | None:
    """Walk the marker segments to the first scan (start of scan, SOS), then look for the end
    marker (EOI, 0xFF 0xD9) with ``bytes.rfind``, in C, from the end of the file.

    Why this is exact enough: in entropy-coded data every 0xFF byte is followed by a stuffed 0x00,
    a restart marker (0xD0-0xD7) or fill bytes, so 0xFF 0xD9 never occurs there, and the scans,
    Huffman tables and scan headers between a progressive JPEG's scans cannot hold it either
    (valid table counts and symbols never put 0xD9 after 0xFF). So:

    * a file holding its EOI always has a 0xFF 0xD9 after the first scan header: never truncated;
    * ``rfind`` returns that EOI or a later 0xFF 0xD9 inside a trailer (a motion photo's MP4, a
      camera trailer): the offset returned never cuts image data, and the decoder stops at the
      first EOI anyway. ``find`` from the scan could stop early, at 0xFF 0xD9 inside a quantisation
      table, comment or application segment placed between progressive scans (rare, but legal);
    * a truncated file has no 0xFF 0xD9 after its first scan header (``TRUNCATED``), unless such a
      segment between scans, or data appended after the cut, happens to hold one: then the decoder
      gets it as before (a rare miss, never a valid file refused).

    Only the few segments before the first scan are walked in Python; the scans themselves (nearly
    all of the file) are only seen by ``rfind``, which stops at the first hit from the end."""
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
            return i + 1  # EOI before any scan: no image data, the decoder judges
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 1
            continue
        if i + 3 > n:
            return TRUNCATED
        seg_end = i + 1 + struct.unpack(">H", data[i + 1 : i + 3])[0]
        if seg_end > n:
            return TRUNCATED
        if marker == 0xDA:  # start of scan: the entropy-coded data follows its header
            eoi = data.rfind(b"\xff\xd9", seg_end)
            return TRUNCATED if eoi < 0 else eoi + 2
        i = seg_end


_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _png_end(data: bytes) -> int | None:
    if data.endswith(_PNG_IEND):  # the usual file: no chunk walk
        return len(data)
    i, n = 8, len(data)
    while True:
        if i + 8 > n:
            return TRUNCATED
        length: int
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
