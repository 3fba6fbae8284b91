"""Results every data tool can read: CSV, JSON lines and Parquet, with the same columns and types,
read back by pandas and duckdb themselves; non-UTF-8 file names; resume, lock and exactly-once
for each format."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import REPO, read_with_pandas, run_cli
from edgeclass.errors import EXIT_INPUT_FAILURES, EXIT_LOCKED, EXIT_OK, EXIT_USAGE
from edgeclass.modelfiles.folder import ModelDir
from edgeclass.run.output.columns import column_types, source_to_path

FORMATS = {"csv": "out.csv", "jsonl": "out.jsonl", "parquet": "out.parquet"}
PANDAS_TYPES = {"int64": "Int64", "float64": "Float64", "string": "string"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, image_sets) -> Path:
    """Four images, one of them also under a Latin-1 (not UTF-8) name, plus a broken file."""
    d = tmp_path_factory.mktemp("formats")
    files = sorted(image_sets["run"].iterdir())[:4]
    for f in files:
        shutil.copy(f, d / f.name)
    os.link(d / files[1].name, os.path.join(os.fsencode(d), b"caf\xe9 " + os.fsencode(files[1].name)))
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    return d


def read_pandas(path: Path, fmt: str, top_k: int) -> pd.DataFrame:
    df = read_with_pandas(path, fmt, top_k).astype({c: PANDAS_TYPES[t] for c, t in column_types(top_k).items()})
    return df.fillna({"error": ""})


def read_duckdb(path: Path) -> list[tuple]:
    return duckdb.sql(f"SELECT source, status, model, top1_id, top1_label, top1_score, top2_label FROM '{path}' "
                      "ORDER BY source").fetchall()


@pytest.fixture(scope="module")
def written(folder, trained_model_dir, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("written")
    paths = {}
    for fmt, name in FORMATS.items():
        r = run_cli("run", str(folder), "--model", str(trained_model_dir), "-o", str(out / name), "-k", "2")
        assert r.returncode == EXIT_INPUT_FAILURES, r.stderr  # broken.jpg
        paths[fmt] = out / name
    r = run_cli("run", str(folder), "--model", str(trained_model_dir), "-o", str(out / "as.txt"), "--format", "jsonl",
                "-k", "2")
    assert r.returncode == EXIT_INPUT_FAILURES, r.stderr
    paths["jsonl-by-option"] = out / "as.txt"
    return paths


def test_same_rows_columns_and_types_in_every_format(written, folder, trained_model_dir):
    frames = {fmt: read_pandas(p, "jsonl" if fmt == "jsonl-by-option" else fmt, 2) for fmt, p in written.items()}
    for fmt, df in frames.items():
        pd.testing.assert_frame_equal(df, frames["csv"], check_exact=False, rtol=1e-6, obj=fmt)
    df = frames["parquet"]
    by = {os.path.basename(os.fsencode(source_to_path(s))): row for s, row in zip(df["source"], df.itertuples())}
    assert len(by) == 6
    assert by[b"broken.jpg"].status == "corrupt" and pd.isna(by[b"broken.jpg"].top1_label)
    # the Latin-1 name: valid UTF-8 text in every file, reversible to the exact bytes, and the
    # same picture under its other name got the same label
    latin = next(k for k in by if k.startswith(b"caf\xe9"))
    assert by[latin].top1_label == by[latin[5:]].top1_label and by[latin].top1_label in ("circle", "square", "triangle", "stripes")
    assert os.path.exists(source_to_path(by[latin].source))
    ok = df[df["status"] == "ok"]
    assert (ok["top1_score"] >= ok["top2_score"]).all() and (ok["top1_id"] >= 0).all()
    for frame in frames.values():  # every row names the model that made it, the failed one too
        assert (frame["model"] == ModelDir(trained_model_dir).model_id("int8")).all()


def test_duckdb_reads_every_format_alike(written):
    rows = {fmt: read_duckdb(p) for fmt, p in written.items() if fmt != "jsonl-by-option"}
    assert rows["csv"] == rows["jsonl"] == rows["parquet"]
    assert len(rows["csv"]) == 6 and sum(r[1] == "ok" for r in rows["csv"]) == 5
    assert any("\\xe9" in r[0] for r in rows["csv"])  # the escape, in valid UTF-8


def test_parquet_schema_is_the_declared_one(written):
    import pyarrow.parquet as pq

    from edgeclass.run.output.parquetfmt import schema

    assert pq.read_schema(written["parquet"]).remove_metadata() == schema(2)


FAULTS = REPO / "tests" / "faultinject"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_resume_after_kill_is_exactly_once(fmt, folder, written, trained_model_dir, tmp_path):
    """Killed after the third row (torn), then resumed: every input once, same rows as a clean run."""
    out = tmp_path / FORMATS[fmt]
    appended = ".out.parquet.log.jsonl" if fmt == "parquet" else out.name
    args = ("run", str(folder), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "2")
    env = {**os.environ, "PYTHONPATH": str(FAULTS), "EDGECLASS_FAULT": f"write:{appended}:4:torn",
           "EDGECLASS_SYNC_EVERY_S": "1e9"}
    if fmt == "jsonl":
        env["EDGECLASS_FAULT"] = f"write:{appended}:3:torn"  # no header line: the third row
    r = subprocess.run([sys.executable, "-m", "edgeclass", *args], capture_output=True, text=True, env=env)
    assert r.returncode == -signal.SIGKILL, r.stderr
    r = run_cli(*args)
    assert r.returncode == EXIT_OK, r.stderr  # broken.jpg, first in order, was committed before the kill
    assert "2 skipped" in r.stderr or "3 skipped" in r.stderr
    assert read_duckdb(out) == read_duckdb(written[fmt])
    r = run_cli(*args)  # nothing left to do
    assert r.returncode == EXIT_OK and "6 skipped" in r.stderr, r.stderr
    assert read_duckdb(out) == read_duckdb(written[fmt])


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_lock_holds_for_every_format(fmt, folder, trained_model_dir, tmp_path):
    out = tmp_path / FORMATS[fmt]
    fd = os.open(out.with_name(out.name + ".lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = run_cli("run", str(folder), "--model", str(trained_model_dir), "-o", str(out), "--resume")
    finally:
        os.close(fd)
    assert r.returncode == EXIT_LOCKED and "another edgeclass run" in r.stderr
    assert not out.exists()


def test_parquet_to_stdout_is_a_usage_error():
    r = run_cli("run", "x.jpg", "--format", "parquet")
    assert r.returncode == EXIT_USAGE and "Traceback" not in r.stderr
