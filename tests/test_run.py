"""edgeclass run: CSV format, inputs, bad files, precisions, defaults."""

from __future__ import annotations

import os
import shutil

import openvino as ov
import pytest

from conftest import read_csv, run_cli
from edgeclass.run.output.columns import header
from edgeclass.engine import Classifier, EngineOptions, compile_config
from edgeclass.errors import EXIT_INPUT_FAILURES, EXIT_MODEL, EXIT_OK, UsageError
from edgeclass.modelfiles.folder import ModelDir


@pytest.fixture
def small_folder(tmp_path, image_sets):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    files = sorted(image_sets["run"].iterdir())[:6]
    for i, f in enumerate(files):
        shutil.copy(f, (folder / "sub" if i % 2 else folder) / f.name.replace(".jpg", ".JPG" if i == 0 else ".jpg"))
    (folder / "notes.txt").write_text("not an image, not an image extension: ignored")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def test_csv_columns_rows_and_order(trained_model_dir, small_folder, tmp_path):
    out = tmp_path / "out.csv"
    r = run_cli("run", str(small_folder), "--model", str(trained_model_dir), "-o", str(out), "-k", "3")
    assert r.returncode == EXIT_INPUT_FAILURES, r.stderr  # two bad files
    text = out.read_text()
    assert text.splitlines()[0] == ",".join(header(3))
    assert header(3) == ["source", "frame", "timestamp_ms", "status", "error", "model",
                         "top1_id", "top1_label", "top1_score", "top2_id", "top2_label", "top2_score",
                         "top3_id", "top3_label", "top3_score"]
    rows = read_csv(out)
    sources = [r["source"] for r in rows]
    assert len(rows) == 8  # 6 images + corrupt + empty; notes.txt is not an image
    assert sources == sorted(sources)  # deterministic order (sorted walk)
    assert any(s.endswith(".JPG") for s in sources)  # extensions are case-insensitive
    by = {os.path.basename(r["source"]): r for r in rows}
    assert by["corrupt.png"]["status"] == "corrupt" and by["corrupt.png"]["error"]
    assert by["empty.jpg"]["status"] == "empty"
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 6
    for row in ok:
        assert row["frame"] == "" and row["timestamp_ms"] == ""
        scores = [float(row[f"top{i}_score"]) for i in (1, 2, 3)]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
        assert row["top1_label"] in ("circle", "square", "triangle", "stripes")
    assert "done:" in r.stderr and "ok 6" in r.stderr and "img/s" in r.stderr


def test_stdout_and_stdin(trained_model_dir, small_folder):
    paths = sorted(str(p) for p in small_folder.rglob("*.jpg") if p.stat().st_size)[:2]
    r = run_cli("run", "-", "--model", str(trained_model_dir), stdin="\n".join(paths) + "\n")
    assert r.returncode == EXIT_OK, r.stderr
    rows = read_csv(r.stdout)
    assert [row["source"] for row in rows] == paths
    assert len(rows[0]) == 6 + 3 * 5  # source, frame, timestamp_ms, status, error, model; default top-5
    assert all(row["model"].startswith(f"{trained_model_dir.name}@") for row in rows)


def test_missing_input_is_a_row_not_a_crash(trained_model_dir, tmp_path):
    r = run_cli("run", str(tmp_path / "nope.jpg"), "--model", str(trained_model_dir))
    assert r.returncode == EXIT_INPUT_FAILURES
    rows = read_csv(r.stdout)
    assert rows[0]["status"] == "missing"


def test_max_failures_tolerates(trained_model_dir, small_folder):
    r = run_cli("run", str(small_folder), "--model", str(trained_model_dir), "--max-failures", "2", "-q")
    assert r.returncode == EXIT_OK, r.stderr
    assert r.stderr == ""  # --quiet


def test_default_model_is_latest_and_precision_int8(trained_model_dir, small_folder, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(trained_model_dir, models / "shapes")
    r = run_cli("run", str(small_folder / "sub"), cwd=tmp_path)
    assert r.returncode == EXIT_OK, r.stderr
    assert "precision int8" in r.stderr
    r = run_cli("run", str(small_folder / "sub"), cwd=tmp_path / "models")  # no models/ below
    assert r.returncode == EXIT_MODEL and "edgeclass convert" in r.stderr


def test_fp32_really_runs_f32(trained_model_dir):
    clf = Classifier(ModelDir(trained_model_dir), EngineOptions(precision="fp32"))
    assert clf.inference_precision == "f32"
    assert clf.config["INFERENCE_PRECISION_HINT"] == "f32"
    assert clf.xml.name == "model_fp32.xml"


def test_bf16_is_explicit_and_checked(trained_model_dir):
    core = ov.Core()
    caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" in caps:
        clf = Classifier(ModelDir(trained_model_dir), EngineOptions(precision="bf16"), core)
        assert clf.inference_precision == "bf16"
    else:
        with pytest.raises(UsageError, match="bf16"):
            compile_config(core, EngineOptions(), "bf16")


def test_int8_and_fp32_agree_on_top1(trained_model_dir, image_sets):
    a = run_cli("run", str(image_sets["run"]), "--model", str(trained_model_dir), "--precision", "int8")
    b = run_cli("run", str(image_sets["run"]), "--model", str(trained_model_dir), "--precision", "fp32")
    ra, rb = read_csv(a.stdout), read_csv(b.stdout)
    assert len(ra) == len(rb) == 12
    agree = sum(x["top1_id"] == y["top1_id"] for x, y in zip(ra, rb))
    assert agree >= 10


def test_results_do_not_depend_on_threads(trained_model_dir, image_sets):
    one = run_cli("run", str(image_sets["run"]), "--model", str(trained_model_dir), "--threads", "1", "--precision", "fp32")
    two = run_cli("run", str(image_sets["run"]), "--model", str(trained_model_dir), "--threads", "2", "--precision", "fp32")
    assert one.returncode == two.returncode == 0
    assert one.stdout == two.stdout
