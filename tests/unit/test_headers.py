"""Image headers and decoders on generated files (in process): where a JPEG ends, declared sizes against Pillow, orientation, pixel limits, depth scaling."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
import cv2
import numpy as np
import pytest
from PIL import Image
from conftest import synthetic_photo
from edgeclass.media.decode import DecodeOptions, ImageReadError, decode_image
from edgeclass.media.imageheader import TRUNCATED, image_end, read_header
from edgeclass.media.pillow_decode import to_uint8
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.results import Status
from make_hostile_corpus import bmp, make_corpus, pillow_bytes, tiff


def _jpeg(img: np.ndarray, *params: int) -> bytes:
    return cv2.imencode(".jpg", img, list(params))[1].tobytes()


PP = PreprocessConfig(input_size=(64, 64), crop_pct=0.875)


def _pillow_size(data: bytes) -> tuple[int, int] | None:
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # bombs: only their declared size is read
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data)).size
    except Exception:  # noqa: BLE001
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _header_variants() -> dict[str, bytes]:
    """BMP headers of every version and odd sizes, TIFF byte orders and size tag types, PNG and
    GIF with extra chunks and blocks."""
    out = {}
    for h, w in ((1, 1), (3, 5), (37, 301), (200, 3)):
        rgb = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
        for size in (12, 40, 52, 56, 64, 108, 124):
            out[f"bmp{size}_{w}x{h}.bmp"] = bmp(rgb, size)
            if size != 12:
                out[f"bmp{size}_{w}x{h}_top_down.bmp"] = bmp(rgb, size, top_down=True)
        grey = rgb[:, :, 0]
        for order in "<>":
            for big in (False, True):
                out[f"tiff{order}{big}_{w}x{h}.tif"] = tiff(w, h, grey.tobytes(), (8,), 1, order=order, bigtiff=big)
            short_size = tiff(w, h, grey.tobytes(), (8,), 1, order=order, extra=((256, 3, [w]), (257, 3, [h])))
            out[f"tiff{order}short_{w}x{h}.tif"] = short_size
        png = cv2.imencode(".png", rgb)[1].tobytes()
        text = b"tEXt" + b"Comment\0" + bytes(300)
        chunk = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text) & 0xFFFFFFFF)
        out[f"png_text_{w}x{h}.png"] = png[:33] + chunk + png[33:]
        out[f"gif_{w}x{h}.gif"] = pillow_bytes(rgb, "GIF", comment=b"x" * 300)
    return out


def _opencv_size(data: bytes) -> tuple[int, int] | None:
    if not data:
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # stored size (orientation ignored)
    return None if image is None else (image.shape[1], image.shape[0])


def test_end_after_fill_bytes_and_with_a_thumbnail():
    """Fill bytes (0xFF runs) before the end marker; an EXIF thumbnail (a whole JPEG with its own
    end marker, before the first scan) does not make a truncated main image whole."""
    img = synthetic_photo(48, 64, seed=6)[:, :, ::-1]
    jpeg = _jpeg(img, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    filled = jpeg[:-2] + b"\xff" * 7 + b"\xff\xd9"
    assert image_end(read_header(filled), filled) == len(filled)
    assert np.array_equal(decode_image(filled, PP, DecodeOptions()), decode_image(jpeg, PP, DecodeOptions()))
    thumb = _jpeg(img[::4, ::4])
    app1 = b"Exif\0\0" + thumb
    with_thumb = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
    assert image_end(read_header(with_thumb), with_thumb) == len(with_thumb)
    half = with_thumb[: len(with_thumb) - 600]
    assert image_end(read_header(half), half) == TRUNCATED


def test_trailers_never_cut_the_image():
    """Data after the end marker (an MP4 holding 0xFF 0xD9, a camera trailer, another JPEG)
    leaves the image whole and the status ok; an end marker inside a comment between
    progressive scans (legal) never ends the image early."""
    img = synthetic_photo(48, 64, seed=7)[:, :, ::-1]
    jpeg = _jpeg(img, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    bare = decode_image(jpeg, PP, DecodeOptions())
    for trailer in (b"\0\0\0\x18ftypmp42" + b"\xff\xd9" * 3 + bytes(5000), b"\xff\xd8TRAILER\xff\xd9", _jpeg(img[:8, :8])):
        data = jpeg + trailer
        assert len(jpeg) <= image_end(read_header(data), data) <= len(data)
        assert np.array_equal(decode_image(data, PP, DecodeOptions()), bare)
    second_scan = jpeg.index(b"\xff\xda", jpeg.index(b"\xff\xda") + 2)
    comment = b"\xff\xfe" + struct.pack(">H", 6) + b"\xff\xd9\xff\xd9"
    data = jpeg[:second_scan] + comment + jpeg[second_scan:]
    assert image_end(read_header(data), data) == len(data)


def test_header_sizes_match_pillow(tmp_path):
    """read_header's width x height equals Pillow's Image.open().size on every file of the hostile
    corpus, the variants and the header layouts above; where Pillow cannot open a file, OpenCV's
    decoded size (files neither reads are listed)."""
    corpus = {name: (tmp_path / name).read_bytes() for name in make_corpus(tmp_path)}
    files = {**corpus, **_header_variants()}
    by_pillow, by_opencv, neither = [], [], set()
    for name, data in files.items():
        header = read_header(data)
        size = _pillow_size(data)
        checked = by_pillow
        if size is None:
            size, checked = _opencv_size(data), by_opencv
        if size is None:
            neither.add(name)
        elif header.format != "unknown":
            assert (header.width, header.height) == size, name
            checked.append(name)
    assert neither == {"zero.jpg", "text.jpg", "photo.heic", "heic_named.jpg", "bomb.webp", "cut_strip.tif",
                       "rgb_half_float.tif", "os2v2_16.bmp"}
    for name in ("rgb_half_float.tif", "os2v2_16.bmp"):
        assert (read_header(files[name]).width, read_header(files[name]).height) == (160, 120), name
    # Pillow has no mode for float RGB and misreads big-endian BigTIFF sizes
    assert set(by_opencv) == {"rgb_float.tif", "rgb_float_mm.tif", "rgb_bigtiff_mm.tif", "tiff>True_1x1.tif",
                              "tiff>True_5x3.tif", "tiff>True_301x37.tif", "tiff>True_3x200.tif"}
    assert {"os2.bmp", "os2_palette.bmp", "v64_top_down.bmp", "rgb16_mm.tif", "rgb_bigtiff.tif", "bmp12_301x37.bmp",
            "tiff>short_3x200.tif", "tiff<True_5x3.tif", "bmp124_1x1_top_down.bmp", "png_text_5x3.png"} <= set(by_pillow)
    assert len(by_pillow) >= 130


def test_exif_orientation_is_applied_by_both_decoders():
    """The same TIFF with Orientation 6 (rotate 90°) uncompressed (OpenCV) and LZMA (Pillow)."""
    import lzma

    rgb = synthetic_photo(30, 50, seed=8)
    plain = tiff(50, 30, rgb.tobytes(), (8, 8, 8), 2, extra=((274, 3, [6]),))
    packed = tiff(50, 30, lzma.compress(rgb.tobytes()), (8, 8, 8), 2, compression=34925, extra=((274, 3, [6]),))
    by_opencv = decode_image(plain, PP, DecodeOptions())
    assert by_opencv.shape == (50, 30, 3)
    assert np.array_equal(decode_image(packed, PP, DecodeOptions()), by_opencv)
    assert np.array_equal(by_opencv, np.rot90(rgb, -1))


def test_pillow_pixel_limit_follows_max_pixels():
    """A TGA (no header edgeclass or OpenCV reads): Pillow's declared size against --max-pixels."""
    tga = pillow_bytes(np.zeros((300, 400, 3), np.uint8), "TGA")
    with pytest.raises(ImageReadError) as e:
        decode_image(tga, PP, DecodeOptions(max_pixels=100_000))
    assert e.value.status is Status.TOO_LARGE and "100000" in e.value.message
    with pytest.raises(ImageReadError) as e:  # beyond twice the limit: Pillow's own check refuses it unread
        decode_image(tga, PP, DecodeOptions(max_pixels=50_000))
    assert e.value.status is Status.TOO_LARGE and "--max-pixels" in e.value.message
    assert decode_image(tga, PP, DecodeOptions(max_pixels=120_000)).shape == (300, 400, 3)


def test_depth_scaling_rules():
    assert to_uint8(np.array([0, 255, 256, 65535], np.uint16)).tolist() == [0, 0, 1, 255]  # OpenCV's v >> 8
    assert to_uint8(np.array([0, 4095, 2048], np.uint16), bits=12).tolist() == [0, 255, 128]
    assert to_uint8(np.array([0.0, 0.5, 1.0, np.nan], np.float32)).tolist() == [0, 128, 255, 0]
    assert to_uint8(np.array([-2.0, 0.0, 6.0], np.float32)).tolist() == [0, 64, 255]  # no white point: stretched
    assert to_uint8(np.array([-5, 5], np.int32)).tolist() == [0, 255]
