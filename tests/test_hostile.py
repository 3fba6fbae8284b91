"""Hostile inputs, made for real: each becomes a row with a status, never a crash."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import read_csv, run_cli, synthetic_photo
from edgeclass.media.decode import DecodeOptions, ImageReadError, decode_image, load_image_tensor
from edgeclass.media.inputs import expand_inputs
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.results import Status
from edgeclass.run.output.columns import source_to_path
from make_hostile_corpus import make_corpus

PP = PreprocessConfig(input_size=(64, 64), crop_pct=0.875)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width=100_000, height=100_000) -> bytes:
    """A valid-looking PNG declaring 10^10 pixels in a few hundred bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def jpeg_bytes(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()


def jpeg_bomb() -> bytes:
    data = bytearray(jpeg_bytes(synthetic_photo(64, 64)))
    i = 2
    while data[i + 1] not in (0xC0, 0xC2):  # find SOF
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    data[i + 5:i + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A folder of hostile files and the status each must get."""
    d = tmp_path_factory.mktemp("hostile")
    img = synthetic_photo(120, 160, seed=3)
    good_jpg = jpeg_bytes(img)
    good_png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()
    expect = {}

    def put(name, data, status):
        (d / name).write_bytes(data)
        expect[name] = status

    put("zero.jpg", b"", "empty")
    put("truncated.jpg", good_jpg[: len(good_jpg) // 2], "corrupt")
    put("truncated.png", good_png[: len(good_png) // 2], "corrupt")
    put("text.png", b"hello, I am not an image\n" * 10, "corrupt")
    put("html.jpeg", b"<html><body>404</body></html>", "corrupt")
    put("bomb.png", png_bomb(), "too_large")
    put("bomb.jpg", jpeg_bomb(), "too_large")
    # odd but valid images classify, converted properly
    cv2.imwrite(str(d / "sixteen.png"), (np.linspace(0, 65535, 100 * 80).reshape(80, 100)[..., None]
                                          * np.ones(3)).astype(np.uint16))
    expect["sixteen.png"] = "ok"
    cv2.imwrite(str(d / "gray.png"), img[..., 0])
    expect["gray.png"] = "ok"
    Image.fromarray(img).convert("CMYK").save(d / "cmyk.jpg")
    expect["cmyk.jpg"] = "ok"
    cv2.imwrite(str(d / "alpha.png"), np.dstack([img[..., ::-1], np.full(img.shape[:2], 128, np.uint8)]))
    expect["alpha.png"] = "ok"
    Image.fromarray(img).save(d / "pal.bmp")
    expect["pal.bmp"] = "ok"
    Image.fromarray(img).save(d / "img.webp")
    expect["img.webp"] = "ok"
    Image.fromarray(img).save(d / "img.TIFF")
    expect["img.TIFF"] = "ok"
    # links
    os.symlink(d / "does-not-exist.jpg", d / "broken-link.jpg")
    expect["broken-link.jpg"] = "missing"
    os.symlink("loop.jpg", d / "loop.jpg")
    expect["loop.jpg"] = "unreadable"
    os.mkfifo(d / "fifo.jpg")  # would block a naive open()
    expect["fifo.jpg"] = "unreadable"
    # names that CSV must quote
    for name in ['comma, name.jpg', 'quote"name.jpg', "new\nline.jpg", "non-utf8-\udcff.jpg"]:
        put(name, good_jpg, "ok")
    return d, expect


def test_every_hostile_file_is_a_row(hostile, trained_model_dir, tmp_path):
    d, expect = hostile
    out = tmp_path / "out.csv"
    r = run_cli("run", str(d), "--model", str(trained_model_dir), "-o", str(out), timeout=120)
    assert r.returncode == 1, r.stderr  # some inputs failed
    assert "Traceback" not in r.stderr
    rows = read_csv(out)
    got = {os.path.basename(source_to_path(row["source"])): row for row in rows}
    assert set(got) == set(expect)  # nothing skipped silently, nothing extra
    for name, status in expect.items():
        assert got[name]["status"] == status, (name, got[name])
        assert (got[name]["error"] == "") == (status == "ok"), name
    assert "pixels" in got["bomb.png"]["error"] and "--max-pixels" in got["bomb.png"]["error"]
    assert got["broken-link.jpg"]["error"] == "broken symlink"
    assert got["loop.jpg"]["error"] == "symlink loop"
    # the non-UTF-8 name is written with a reversible escape (the CSV stays valid UTF-8)
    assert os.path.basename(next(r["source"] for r in rows if "non-utf8" in r["source"])) == "non-utf8-\\xff.jpg"
    assert os.path.exists(source_to_path(next(r["source"] for r in rows if "non-utf8" in r["source"])))
    out.read_bytes().decode("utf-8")  # strict: no raw bytes


def test_users_files_are_not_modified(hostile, trained_model_dir):
    d, _ = hostile
    before = {p.name: (p.lstat().st_mtime_ns, p.lstat().st_size) for p in d.iterdir()}
    run_cli("run", str(d), "--model", str(trained_model_dir), timeout=120)
    after = {p.name: (p.lstat().st_mtime_ns, p.lstat().st_size) for p in d.iterdir()}
    assert before == after


def test_odd_formats_convert_properly(hostile):
    d, _ = hostile
    opts = DecodeOptions()
    gray = decode_image((d / "gray.png").read_bytes(), PP, opts)
    assert gray.shape[2] == 3 and (gray[..., 0] == gray[..., 1]).all()
    sixteen = decode_image((d / "sixteen.png").read_bytes(), PP, opts)
    assert sixteen.dtype == np.uint8 and sixteen.max() == 255 and sixteen.min() == 0
    cmyk = decode_image((d / "cmyk.jpg").read_bytes(), PP, opts).astype(int)
    ref = np.asarray(Image.open(d / "cmyk.jpg").convert("RGB")).astype(int)
    assert np.abs(cmyk - ref).mean() < 8  # same colours as PIL's CMYK -> RGB
    alpha = decode_image((d / "alpha.png").read_bytes(), PP, opts)
    assert alpha.shape[2] == 3


def test_pixel_limit_is_configurable(hostile, tmp_path):
    d, _ = hostile
    with pytest.raises(ImageReadError) as e:
        load_image_tensor(d / "gray.png", PP, DecodeOptions(max_pixels=100))
    assert e.value.status is Status.TOO_LARGE


def test_file_deleted_between_listing_and_reading(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(synthetic_photo(50, 50)))
    sources = list(expand_inputs([str(tmp_path)]))
    (tmp_path / "a.jpg").unlink()
    with pytest.raises(ImageReadError) as e:
        load_image_tensor(sources[0].path, PP, DecodeOptions())
    assert e.value.status is Status.MISSING


def test_unreadable_permissions(tmp_path):
    """Root reads everything, so the read is made by a forked child that dropped to nobody."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    d = Path(tempfile.mkdtemp(prefix="edgeclass-perm-"))
    try:
        os.chmod(d, 0o755)
        (d / "secret.jpg").write_bytes(jpeg_bytes(synthetic_photo(50, 50)))
        os.chmod(d / "secret.jpg", 0o000)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: no OpenVINO, only the read path
            try:
                os.setgid(65534)
                os.setuid(65534)
                try:
                    load_image_tensor(d / "secret.jpg", PP, DecodeOptions())
                    msg = "read it"
                except ImageReadError as e:
                    msg = f"{e.status.value} {e.message}"
                os.write(wfd, msg.encode())
            finally:
                os._exit(0)
        os.close(wfd)
        os.waitpid(pid, 0)
        assert os.read(rfd, 200).decode() == "unreadable permission denied"
        os.close(rfd)
    finally:
        os.chmod(d / "secret.jpg", 0o644)
        for p in d.iterdir():
            p.unlink()
        d.rmdir()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, tuple[str, str]]]:
    d = tmp_path_factory.mktemp("corpus")
    return d, make_corpus(d)


def test_hostile_corpus_statuses(corpus, trained_model_dir, tmp_path):
    """Every file of scripts/make_hostile_corpus.py gets its expected status (files named one by
    one, so .gif/.heic are read too); valid-but-odd files are classified."""
    d, expected = corpus
    out = tmp_path / "out.csv"
    files = [str(d / name) for name in sorted(expected)]
    r = run_cli("run", *files, "--model", str(trained_model_dir), "-o", str(out), "-k", "1", timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    rows = read_csv(out)
    assert [row["source"] for row in rows] == files  # one row each, in order
    for row in rows:
        status, message = expected[os.path.basename(row["source"])]
        assert (row["status"], message in row["error"]) == (status, True), row
        if status == "ok":
            assert row["top1_label"] in ("circle", "square", "triangle", "stripes")
    # no OpenCV, libpng, libjpeg, libtiff or Pillow lines: only edgeclass's own
    assert foreign_stderr_lines(r.stderr, rows) == []


def foreign_stderr_lines(stderr: str, rows: list[dict]) -> list[str]:
    """Lines of a run's stderr that edgeclass did not print (its start and end lines, progress,
    and one line per failed row)."""
    own = {f"{row['status']}: {row['source']}: {row['error']}" for row in rows if row["status"] != "ok"}
    return [line for line in stderr.splitlines()
            if line and line not in own and not line.startswith(("model ", "done: ", "progress: "))]


def test_verbose_shows_the_libraries_lines(corpus, trained_model_dir):
    """Files on which libpng, libjpeg and Pillow's libtiff print their own warnings: the same rows
    with and without --verbose, their lines only with it."""
    d, expected = corpus
    files = [str(d / name) for name in ("bad_iccp.png", "garbled_scan.jpg", "garbled_lzma.tif", "unknown_tag.tif")]
    quiet = run_cli("run", *files, "--model", str(trained_model_dir), "-k", "1")
    verbose = run_cli("run", *files, "--model", str(trained_model_dir), "-k", "1", "--verbose")
    rows = read_csv(quiet.stdout)
    assert [(row["status"], row["error"]) for row in rows] == [(r["status"], r["error"]) for r in read_csv(verbose.stdout)]
    assert [row["status"] for row in rows] == [expected[os.path.basename(f)][0] for f in files]
    assert foreign_stderr_lines(quiet.stderr, rows) == []
    shown = "\n".join(foreign_stderr_lines(verbose.stderr, rows))
    for line in ("libpng warning: iCCP", "Corrupt JPEG data", "LZMADecode", "Unknown field with tag 65000"):
        assert line in shown, verbose.stderr


def test_motion_photo_is_the_jpeg_before_the_trailer(corpus):
    """The MP4 after a motion photo's JPEG changes nothing: same tensor as the bare JPEG."""
    d, _ = corpus
    data = (d / "motion_photo.jpg").read_bytes()
    end = data.index(b"ftypmp42") - 4
    bare = decode_image(data[:end], PP, DecodeOptions())
    assert np.array_equal(decode_image(data, PP, DecodeOptions()), bare)
    assert np.array_equal(decode_image((d / "camera_trailer.jpg").read_bytes(), PP, DecodeOptions()), bare)


def test_opencv_pixel_limit_follows_max_pixels(corpus, trained_model_dir):
    """A format whose header edgeclass does not parse (PPM) is refused by OpenCV's own limit,
    which `run` sets from --max-pixels before OpenCV starts."""
    d, _ = corpus
    r = run_cli("run", str(d / "bomb.ppm"), "--model", str(trained_model_dir), "--max-pixels", "1000000000")
    assert read_csv(r.stdout)[0]["status"] == "corrupt"  # allowed by the limit, then too short to decode
    r = run_cli("run", str(d / "bomb.ppm"), "--model", str(trained_model_dir), "--max-pixels", "800000000")
    row = read_csv(r.stdout)[0]
    assert row["status"] == "too_large" and "800000000" in row["error"]


@pytest.mark.skipif(shutil.which("jpegtran") is None, reason="needs jpegtran (scripts/install-test-system-deps.sh)")
def test_arithmetic_jpeg_decodes_like_huffman(corpus):
    d, expected = corpus
    assert expected["arithmetic.jpg"] == ("ok", "")
    a = decode_image((d / "arithmetic.jpg").read_bytes(), PP, DecodeOptions())
    assert np.array_equal(a, decode_image((d / "motion_photo.jpg").read_bytes(), PP, DecodeOptions()))
