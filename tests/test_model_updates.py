"""Rows that name their model, and `--resume` across a model update: two real models (the FP32
and the INT8 IR of the trained test model have different ids and different scores), real
`edgeclass run` processes, CSV, JSON lines and Parquet read back with pandas and duckdb, kills
from the fault injector (tests/faultinject), and outputs written the way the release before
model ids wrote them (no `model` column, journal version 2)."""

from __future__ import annotations

import csv
import io
import json
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
from edgeclass.errors import EXIT_INPUT_FAILURES, EXIT_OK, EXIT_USAGE
from edgeclass.modelfiles.folder import ModelDir
from edgeclass.run.journal import MAGIC as JOURNAL_MAGIC
from edgeclass.run.output.columns import legacy_header

FAULTS = REPO / "tests" / "faultinject"
FORMATS = {"csv": "out.csv", "jsonl": "out.jsonl", "parquet": "out.parquet"}
N_OLD, N = 6, 8  # inputs classified by the first model, all inputs (the last one is corrupt)
K = 2


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, image_sets) -> list[str]:
    """Seven images and a corrupt file (failure rows name their model too), in listing order."""
    d = tmp_path_factory.mktemp("updates-in")
    for f in sorted(image_sets["run"].iterdir())[: N - 1]:
        shutil.copy(f, d / f.name)
    (d / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return sorted(str(p) for p in d.iterdir())


@pytest.fixture(scope="module")
def ids(trained_model_dir) -> dict[str, str]:
    md = ModelDir(trained_model_dir)
    out = {p: md.model_id(p) for p in ("fp32", "int8")}
    assert out["fp32"] != out["int8"] and all(i.startswith(f"{trained_model_dir.name}@") for i in out.values())
    return out


def clean_rows(inputs: list[str], model_dir: Path, precision: str) -> dict[str, tuple]:
    """source -> (status, model, top1_label, top1_score) of a run without --resume."""
    r = run_cli("run", *inputs, "--model", str(model_dir), "--precision", precision, "-k", str(K))
    assert r.returncode == EXIT_INPUT_FAILURES, r.stderr  # the corrupt file
    return {row["source"]: (row["status"], row["model"], row["top1_label"], row["top1_score"])
            for row in csv.DictReader(io.StringIO(r.stdout))}


@pytest.fixture(scope="module")
def reference(inputs, trained_model_dir, ids) -> dict[str, dict[str, tuple]]:
    """Per precision, what a clean run of that model writes for each input."""
    ref = {p: clean_rows(inputs, trained_model_dir, p) for p in ("fp32", "int8")}
    for p in ref:
        assert sorted(ref[p]) == inputs and {row[1] for row in ref[p].values()} == {ids[p]}
        assert ref[p][inputs[-1]][0] == "corrupt"
    scores = [(ref["fp32"][s][3], ref["int8"][s][3]) for s in inputs[:-1]]
    assert any(a != b for a, b in scores)  # the two models are told apart by their scores too
    return ref


def read_rows(path: Path, fmt: str) -> list[tuple]:
    """(source, status, model, top1_label, top1_score) per row, read by pandas, checked by duckdb."""
    df = read_with_pandas(path, fmt, K).astype({"model": "string", "top1_label": "string", "top1_score": "Float64"})
    rows = [(s, st, None if pd.isna(m) else m, None if pd.isna(lab) else lab, None if pd.isna(sc) else f"{sc:.6f}")
            for s, st, m, lab, sc in zip(df["source"], df["status"], df["model"], df["top1_label"], df["top1_score"])]
    by_duckdb = duckdb.sql(f"SELECT source, status, model, top1_label, top1_score FROM '{path}'").fetchall()
    assert [(s, st, m or None, lab) for s, st, m, lab, _ in by_duckdb] == [r[:4] for r in rows]
    return rows


def expected(reference: dict, plan: dict[str, str]) -> list[tuple]:
    """The rows an output must hold: for each input (sorted), the clean row of the model named."""
    out = []
    for source in sorted(plan):
        status, model, label, score = reference[plan[source]][source]
        out.append((source, status, model or None, label or None, f"{float(score):.6f}" if score else None))
    return out


def assert_rows(path: Path, fmt: str, reference: dict, plan: dict[str, str]) -> None:
    rows = read_rows(path, fmt)
    assert sorted(r[0] for r in rows) == sorted(plan)  # every input exactly once
    assert sorted(rows) == expected(reference, plan)  # the right model, label and score on each row


def run_resume(out: Path, inputs: list[str], model_dir: Path, precision: str, *extra: str, summary: Path | None = None):
    args = ["run", *inputs, "--model", str(model_dir), "--precision", precision, "-o", str(out), "--resume",
            "-k", str(K), *extra]
    if summary is not None:
        args += ["--summary-json", str(summary)]
    return run_cli(*args)


def run_faulty(fault: str, out: Path, inputs: list[str], model_dir: Path, precision: str, *extra: str):
    env = {**os.environ, "PYTHONPATH": str(FAULTS), "EDGECLASS_FAULT": fault, "EDGECLASS_SYNC_EVERY_S": "1e9"}
    args = ["run", *inputs, "--model", str(model_dir), "--precision", precision, "-o", str(out), "--resume",
            "-k", str(K), *extra]
    return subprocess.run([sys.executable, "-m", "edgeclass", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def appended_file(out: Path, fmt: str) -> str:
    """The name of the file `--resume` appends rows to (the fault injector's target)."""
    return f".{out.name}.log.jsonl" if fmt == "parquet" else out.name


# ----------------------------------------------------------------------------- a model update
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_new_model_keeps_old_rows_then_redo_leaves_each_input_once(fmt, inputs, reference, ids, trained_model_dir,
                                                                    tmp_path):
    out, s = tmp_path / FORMATS[fmt], tmp_path / "s.json"
    old = inputs[: N_OLD - 1] + inputs[-1:]  # the corrupt file among the first model's inputs
    r = run_resume(out, old, trained_model_dir, "fp32")
    assert r.returncode == EXIT_INPUT_FAILURES, r.stderr
    assert f"id {ids['fp32']}" in r.stderr  # the run's first line names the model id
    assert_rows(out, fmt, reference, {x: "fp32" for x in old})

    # the model is updated: --resume keeps the old model's rows and says how many
    r = run_resume(out, inputs, trained_model_dir, "int8", summary=s)
    assert r.returncode == EXIT_OK, r.stderr
    summary = json.loads(s.read_text())
    assert (summary["skipped_resume"], summary["kept_other_models"], summary["total"]) == (N_OLD, N_OLD, N - N_OLD)
    assert summary["model_id"] == ids["int8"]
    assert f"{N_OLD} skipped (already in output), {N_OLD} of them by another model" in r.stderr
    plan = {x: "fp32" if x in old else "int8" for x in inputs}
    assert_rows(out, fmt, reference, plan)

    # --redo-other-models: every input once, every row by the new model
    r = run_resume(out, inputs, trained_model_dir, "int8", "--redo-other-models", summary=s)
    assert r.returncode == EXIT_INPUT_FAILURES, r.stderr  # the corrupt file, classified again
    summary = json.loads(s.read_text())
    assert (summary["skipped_resume"], summary["kept_other_models"], summary["total"]) == (N - N_OLD, 0, N_OLD)
    assert f"removed {N_OLD} rows of inputs classified again" in r.stderr
    assert_rows(out, fmt, reference, {x: "int8" for x in inputs})

    # nothing left to do, with or without the option
    for extra in ((), ("--redo-other-models",)):
        r = run_resume(out, inputs, trained_model_dir, "int8", *extra, summary=s)
        assert r.returncode == EXIT_OK, r.stderr
        summary = json.loads(s.read_text())
        assert (summary["skipped_resume"], summary["kept_other_models"], summary["total"]) == (N, 0, 0)
    assert_rows(out, fmt, reference, {x: "int8" for x in inputs})


def test_redo_other_models_needs_resume(inputs, tmp_path):
    r = run_cli("run", *inputs, "--redo-other-models", "-o", str(tmp_path / "o.csv"), cwd=tmp_path)
    assert r.returncode == EXIT_USAGE and "--redo-other-models goes with --resume" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o.csv").exists()


def test_rows_to_stdout_and_without_resume_name_the_model(inputs, ids, trained_model_dir, tmp_path):
    r = run_cli("run", *inputs, "--model", str(trained_model_dir), "--format", "jsonl", "-k", "1")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == N and {row["model"] for row in rows} == {ids["int8"]}  # int8: the default
    assert list(rows[0])[:7] == ["source", "frame", "timestamp_ms", "status", "error", "model", "top1_id"]


# ----------------------------------------------------------------------------- kills during a redo
# (fault, rows of the new model committed when killed)
REDO_KILLS = [
    ("write:{appended}:3:kill", 2),  # killed before the third new row
    ("write:{appended}:3:torn", 2),  # the third new row torn
    ("write:{journal}:3:kill", 2),  # the third new row written, its record not
    ("replace:{appended}:1:kill", N),  # every row written; killed before the old rows' removal is renamed in
    ("replace:{journal}:1:kill", N),  # the new output renamed in, the new journal not
]


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("fault,committed", REDO_KILLS, ids=[k[0] for k in REDO_KILLS])
def test_redo_killed_then_resumed_is_exactly_once(fault, committed, fmt, inputs, reference, ids, trained_model_dir,
                                                  tmp_path):
    out = tmp_path / FORMATS[fmt]
    assert run_resume(out, inputs, trained_model_dir, "fp32").returncode == EXIT_INPUT_FAILURES
    appended = appended_file(out, fmt)
    spec = fault.format(appended=appended, journal=f"{appended}.journal")
    r = run_faulty(spec, out, inputs, trained_model_dir, "int8", "--redo-other-models")
    assert r.returncode == -signal.SIGKILL, r.stderr
    s = tmp_path / "s.json"
    r = run_resume(out, inputs, trained_model_dir, "int8", "--redo-other-models", summary=s)
    assert r.returncode in (EXIT_OK, EXIT_INPUT_FAILURES), r.stderr  # the corrupt file: redone or not yet
    assert "Traceback" not in r.stderr
    summary = json.loads(s.read_text())
    assert summary["skipped_resume"] == committed and summary["total"] == N - committed
    assert_rows(out, fmt, reference, {x: "int8" for x in inputs})


# ----------------------------------------------------------------------------- the release before model ids
def _csv_line(values: list) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else f"{v:.6f}" if isinstance(v, float) else str(v)
                                                   for v in values])
    return buf.getvalue().encode("utf-8")


def write_previous_release(out: Path, fmt: str, reference: dict, sources: list[str], journal: bool = True) -> None:
    """What the release before model ids left after `run --resume -k 2` with the FP32 model:
    its columns (no `model`), one row per input, and its journal ("edgeclass-journal 2", records
    `D pos size mtime ctime status input`). Parquet: the JSON-lines log and its journal beside
    the Parquet file (or, without `journal`, the Parquet file a run without --resume wrote)."""
    cols = legacy_header(K)
    rows = []
    for source in sources:
        status, _, label, score = reference["fp32"][source]
        rows.append([source, None, None, status, "" if status == "ok" else "cannot decode (corrupt)",
                     *((3, label, float(score), 1, "x", 0.001) if status == "ok" else (None,) * 6)])
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {"frame": pa.int64(), "timestamp_ms": pa.float64(), "top1_id": pa.int64(), "top2_id": pa.int64(),
                 "top1_score": pa.float64(), "top2_score": pa.float64()}
        schema = pa.schema([(c, types.get(c, pa.string())) for c in cols])
        pq.write_table(pa.table(list(zip(*rows)), schema=schema), out)
        if not journal:
            return
        target = out.with_name(f".{out.name}.log.jsonl")
    else:
        target = out
    data = _csv_line(cols) if fmt == "csv" else b""
    records = ["edgeclass-journal 2"]
    for values in rows:
        data += _csv_line(values) if fmt == "csv" else (json.dumps(dict(zip(cols, values)), ensure_ascii=False)
                                                       + "\n").encode("utf-8")
        st = os.stat(values[0])
        records.append(f"D\t{len(data)}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ctime_ns}\t{values[3]}\t{values[0]}")
    target.write_bytes(data + (b'{"source": "torn' if fmt != "csv" else b"/torn/row,,"))  # a kill's torn tail
    if journal:
        target.with_name(target.name + ".journal").write_text("\n".join(records + [f"S\t{len(data)}"]) + "\n")


def old_rows(reference: dict, sources: list[str]) -> dict[str, tuple]:
    """The previous release's rows as this release reads them after the upgrade (null model)."""
    return {s: (reference["fp32"][s][0], "", reference["fp32"][s][2], reference["fp32"][s][3]) for s in sources}


@pytest.mark.parametrize("journal", [True, False], ids=["with-journal", "without-journal"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_previous_release_output_is_upgraded_without_losing_a_row(fmt, journal, inputs, reference, ids,
                                                                    trained_model_dir, tmp_path):
    out, s = tmp_path / FORMATS[fmt], tmp_path / "s.json"
    old = inputs[: N_OLD - 1] + inputs[-1:]
    write_previous_release(out, fmt, reference, old, journal)
    ref = {**reference, "old": old_rows(reference, old)}

    r = run_resume(out, inputs, trained_model_dir, "int8", summary=s)
    assert r.returncode == EXIT_OK, r.stderr
    assert "Traceback" not in r.stderr
    if fmt != "parquet" or journal:
        assert f"resume: {N_OLD} rows written before model ids now have a model column" in r.stderr
    summary = json.loads(s.read_text())
    # rows of no known model count as another model's
    assert (summary["skipped_resume"], summary["kept_other_models"], summary["total"]) == (N_OLD, N_OLD, N - N_OLD)
    assert_rows(out, fmt, ref, {x: "old" if x in old else "int8" for x in inputs})  # null model on the old rows
    if fmt != "parquet":
        assert out.with_name(out.name + ".journal").read_text().startswith(JOURNAL_MAGIC + "\n")  # this release's

    r = run_resume(out, inputs, trained_model_dir, "int8", "--redo-other-models", summary=s)
    assert r.returncode == EXIT_INPUT_FAILURES, r.stderr
    assert json.loads(s.read_text())["total"] == N_OLD
    assert_rows(out, fmt, reference, {x: "int8" for x in inputs})


# (fault, the output as the previous release left it right after the kill)
UPGRADE_KILLS = [
    ("replace:out.csv.compacting:1:kill", True),  # both upgraded files written, not yet named
    ("replace:out.csv:1:kill", True),  # named, the renames not begun
    ("replace:out.csv.journal:1:kill", False),  # the upgraded output renamed in, its journal not
]


@pytest.mark.parametrize("fault,intact", UPGRADE_KILLS, ids=[k[0] for k in UPGRADE_KILLS])
def test_kill_during_upgrade_loses_nothing(fault, intact, inputs, reference, ids, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    old = inputs[:N_OLD]
    write_previous_release(out, "csv", reference, old)
    before = out.read_bytes()
    r = run_faulty(fault, out, inputs, trained_model_dir, "int8")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert (out.read_bytes() == before) is intact
    r = run_resume(out, inputs, trained_model_dir, "int8")
    assert r.returncode == EXIT_INPUT_FAILURES, r.stderr  # the corrupt file is new to this output
    leftovers = [p.name for p in tmp_path.iterdir() if ".compact-" in p.name or p.name.endswith(".compacting")]
    assert leftovers == []  # a killed upgrade's temporaries are finished or removed
    assert_rows(out, "csv", {**reference, "old": old_rows(reference, old)},
                {x: "old" if x in old else "int8" for x in inputs})


# ----------------------------------------------------------------------------- info
def test_info_prints_the_id_of_each_ir(ids, trained_model_dir):
    r = run_cli("info", str(trained_model_dir), env={"COLUMNS": "400"})
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if "model id" in line]
    assert [ids["fp32"] in lines[0], ids["int8"] in lines[1]] == [True, True], r.stdout
