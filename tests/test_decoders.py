"""Still-image decoding beyond OpenCV: a JPEG's end found structurally, header sizes checked
against Pillow, Pillow as the second decoder (and OpenCV at the file's own depth for float RGB
TIFF), and those files classified like any other."""

from __future__ import annotations

import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, read_csv, run_cli, synthetic_photo
from edgeclass.media.decode import DecodeOptions, ImageReadError, decode_image
from edgeclass.media.imageheader import TRUNCATED, image_end, read_header
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.results import Status
from make_hostile_corpus import grey_of, pillow_bytes, variant_files
from train_test_model import CLASSES, make_image

PP = PreprocessConfig(input_size=(64, 64), crop_pct=0.875)


def _segments(jpeg: bytes) -> list[tuple[int, int]]:
    """(marker, offset) of every marker segment before the first scan, and the first SOS."""
    out, i = [], 2
    while True:
        marker = jpeg[i + 1]
        out.append((marker, i))
        if marker == 0xDA:
            return out
        i += 2 + struct.unpack(">H", jpeg[i + 2 : i + 4])[0]


def _jpeg(img: np.ndarray, *params: int) -> bytes:
    return cv2.imencode(".jpg", img, list(params))[1].tobytes()


# ----------------------------------------------------------------------------- a JPEG's end
@pytest.mark.parametrize("params", [(), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
                                    (cv2.IMWRITE_JPEG_RST_INTERVAL, 2),
                                    (cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_RST_INTERVAL, 1)])
def test_every_cut_after_the_first_scan_is_truncated(params):
    """Baseline, progressive (several scans with tables between them), restart markers: cut
    anywhere before the end marker, the file is truncated; whole, it ends at its last byte."""
    img = synthetic_photo(40, 56, seed=5)[:, :, ::-1]
    jpeg = _jpeg(img, *params)
    header = read_header(jpeg)
    assert image_end(header, jpeg) == len(jpeg)
    if params and params[0] == cv2.IMWRITE_JPEG_RST_INTERVAL:
        assert any(bytes([0xFF, m]) in jpeg for m in range(0xD0, 0xD8))  # restart markers are there
    assert _segments(jpeg)[-1][0] == 0xDA  # the cuts cover the segments before the first scan and every scan
    assert [image_end(header, jpeg[:cut]) for cut in range(2, len(jpeg))] == [TRUNCATED] * (len(jpeg) - 2)


# ----------------------------------------------------------------------------- header sizes


# ----------------------------------------------------------------------------- Pillow's decode
@pytest.fixture(scope="module")
def variants() -> tuple[np.ndarray, dict]:
    rgb = make_image(0, np.random.default_rng(11), (90, 120), variant="colours")
    return rgb, variant_files(rgb)


def jpeg_of(rgb: np.ndarray) -> bytes:
    return _jpeg(np.ascontiguousarray(rgb[:, :, ::-1]))  # what old_jpeg_tiff embeds


# Decoded by Pillow, or by OpenCV at the file's own depth (float RGB): OpenCV's ordinary read fails.
FALLBACK = ("grey12.tif", "grey4.tif", "grey2_white_is_zero.tif", "grey_float.tif", "grey_int32.tif",
            "rgb_lzma.tif", "rgb16_lzma.tif", "rgb_old_jpeg.tif", "rgb_float.tif", "rgb_float_mm.tif")


def test_fallback_files_are_decoded_to_the_right_pixels(variants):
    rgb, files = variants
    grey = grey_of(rgb).astype(int)
    expected = {
        "grey12.tif": grey, "grey4.tif": grey >> 4 << 4 | grey >> 4,  # 4 bits scaled by 255/15
        "grey2_white_is_zero.tif": (grey >> 6) * 85, "grey_float.tif": grey,
        "grey_int32.tif": np.rint((grey - grey.min()) * 255.0 / (grey.max() - grey.min())),
    }
    for name in FALLBACK:
        data = files[name][0]
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None, name
        out = decode_image(data, PP, DecodeOptions()).astype(int)
        assert out.shape == rgb.shape, name
        if name.startswith("grey"):
            assert (out == out[:, :, :1]).all(), name
            assert np.abs(out[:, :, 0] - expected[name]).max() == 0, name
        elif "jpeg" in name:  # the JPEG stream inside, as OpenCV decodes it (chroma upsampling differs a little)
            stream = cv2.imdecode(np.frombuffer(jpeg_of(rgb), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
            assert np.abs(out - stream).mean() < 3, name
        else:
            assert np.array_equal(out, rgb), name


def test_first_frames_bitmaps_and_tga(variants):
    rgb, files = variants
    for name, tolerance in (("animated.png", 0), ("animated.gif", 3), ("os2.bmp", 0), ("os2_palette.bmp", 3),
                            ("rle8.bmp", 3), ("v124_top_down.bmp", 0), ("rgb_bigtiff_mm.tif", 0)):
        out = decode_image(files[name][0], PP, DecodeOptions()).astype(int)
        assert np.abs(out - rgb).mean() <= tolerance, name
    tga = pillow_bytes(rgb, "TGA")
    assert read_header(tga).format == "unknown"
    assert np.array_equal(decode_image(tga, PP, DecodeOptions()), rgb)


def test_neither_decoder_reads_it(variants):
    _, files = variants
    for name in ("rgb_half_float.tif", "os2v2_16.bmp"):
        with pytest.raises(ImageReadError) as e:
            decode_image(files[name][0], PP, DecodeOptions())
        assert e.value.status is Status.UNSUPPORTED and files[name][2] in e.value.message, name
    half = files["rgb_half_float.tif"][0]
    lzma_float = half.replace(struct.pack("<HHIHH", 259, 3, 1, 1, 0), struct.pack("<HHIHH", 259, 3, 1, 34925, 0))
    with pytest.raises(ImageReadError) as e:
        decode_image(lzma_float, PP, DecodeOptions())
    assert "LZMA" in e.value.message


def test_pillow_is_not_imported_when_opencv_decodes(tmp_path):
    """The fallback costs nothing on OpenCV's path: neither it nor Pillow's decoders are imported
    for JPEG, PNG, WebP."""
    paths = []
    for ext in (".jpg", ".png", ".webp"):
        path = tmp_path / f"a{ext}"
        cv2.imwrite(str(path), synthetic_photo(40, 50, seed=9))
        paths.append(str(path))
    code = (
        "import sys\n"
        "from edgeclass.media.decode import DecodeOptions, load_image_tensor\n"
        "from edgeclass.media.preprocess import PreprocessConfig\n"
        f"for p in {paths!r}: load_image_tensor(p, PreprocessConfig(input_size=(64, 64)), DecodeOptions())\n"
        "loaded = [m for m in ('edgeclass.media.pillow_decode', 'PIL.TiffImagePlugin', 'PIL.JpegImagePlugin') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.stdout.strip() == "ok", r.stderr


# ----------------------------------------------------------------------------- classified
@pytest.fixture(scope="module")
def colours_model(accurate_dir, tmp_path_factory):
    """The accurate test model ("colours"), FP32."""
    from edgeclass.model.convert import ConvertOptions, convert

    out = tmp_path_factory.mktemp("decoders-model") / "colours"
    convert(ConvertOptions(model="mobilevitv2_050", weights=accurate_dir / "checkpoint.safetensors",
                           labels=accurate_dir / "labels.txt", output=out, input_size=64, crop_pct=0.875, int8=False))
    return out


CLASSIFIED = ("rgb_lzma.tif", "rgb16_lzma.tif", "rgb_old_jpeg.tif", "rgb_float.tif", "animated.png", "animated.gif",
              "os2.bmp", "os2_palette.bmp", "rle8.bmp", "v124_top_down.bmp")


def test_fallback_files_are_classified(colours_model, tmp_path):
    """16-bit, float, LZMA and old-style JPEG TIFF, APNG, GIF, OS/2 and RLE bitmaps, a TGA: each
    class's picture gets its class, as its plain PNG does."""
    expected = {}
    for label, name in enumerate(CLASSES):
        rgb = make_image(label, np.random.default_rng(40 + label), (96, 128), variant="colours")
        files = variant_files(rgb)
        folder = tmp_path / name
        folder.mkdir()
        cv2.imwrite(str(folder / "control.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        (folder / "pillow_only.tga").write_bytes(pillow_bytes(rgb, "TGA"))
        for variant in CLASSIFIED:
            (folder / variant).write_bytes(files[variant][0])
        for path in folder.iterdir():
            expected[str(path)] = name
    out = tmp_path / "out.csv"
    r = run_cli("run", *sorted(expected), "--model", str(colours_model), "-o", str(out), "-k", "1")
    assert r.returncode == 0, r.stderr
    rows = read_csv(out)
    assert len(rows) == len(expected) == 4 * (len(CLASSIFIED) + 2)
    wrong = [(row["source"], row["status"], row["top1_label"]) for row in rows
             if (row["status"], row["top1_label"]) != ("ok", expected[row["source"]])]
    assert wrong == []
