"""Nothing lost, on every path: real `edgeclass run` processes hit by real faults at every write
boundary (tests/faultinject/sitecustomize.py interposes os.write/os.pwrite/os.replace/os.open
in the subprocess: SIGKILL, torn writes, a full disk), files replaced or deleted between
listing and reading, permission flips, corrupt IRs. After each fault a `--resume` run must
leave the exact row set: every input once, with the label a clean run gives it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, read_csv, run_cli
from edgeclass.errors import EXIT_INPUT_FAILURES, EXIT_MODEL, EXIT_OK, EXIT_OUTPUT, EXIT_USAGE
from edgeclass.run.journal import MAGIC

FAULTS = REPO / "tests" / "faultinject"
N = 6


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, image_sets) -> Path:
    d = tmp_path_factory.mktemp("faults-in")
    for f in sorted(image_sets["run"].iterdir())[:N]:
        shutil.copy(f, d / f.name)
    return d


@pytest.fixture(scope="module")
def reference(inputs, trained_model_dir) -> dict[str, str]:
    """source -> top-1 label of a clean run: every fault below must end with exactly these rows."""
    r = run_cli("run", str(inputs), "--model", str(trained_model_dir), "-k", "1")
    assert r.returncode == EXIT_OK, r.stderr
    rows = {row["source"]: row["top1_label"] for row in read_csv(r.stdout)}
    assert len(rows) == N
    return rows


def run_faulty(fault: str, *args: str, data: Path | None = None, prefix: tuple[str, ...] = ()):
    # no periodic checkpoint (a time-based journal write) may shift the write counts
    env = {**os.environ, "PYTHONPATH": str(FAULTS), "EDGECLASS_FAULT": fault, "EDGECLASS_SYNC_EVERY_S": "1e9"}
    if data is not None:
        env["EDGECLASS_FAULT_DATA"] = str(data)
    return subprocess.run([*prefix, sys.executable, "-m", "edgeclass", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def rows_of(out: Path) -> list[dict]:
    out.read_bytes().decode("utf-8")  # always valid UTF-8
    return read_csv(out)


def assert_exact(out: Path, reference: dict[str, str]) -> None:
    rows = rows_of(out)
    assert sorted(r["source"] for r in rows) == sorted(reference)  # every input exactly once
    assert {r["source"]: r["top1_label"] for r in rows} == reference  # the right label on the right row
    assert all(r["status"] == "ok" for r in rows)
    assert len({r["model"] for r in rows}) == 1 and "@" in rows[0]["model"]  # one model named on every row


# (fault, rows of a clean run that must be in the output right after the fault)
KILLS = [
    ("write:out.csv:1:kill", 0),  # before the header
    ("write:out.csv:1:torn", 0),  # a torn header
    ("write:out.csv:4:kill", 2),  # before the third row
    ("write:out.csv:4:torn", 2),  # the third row torn
    ("write:out.csv.journal:1:torn", 0),  # the journal's first line torn
    ("write:out.csv.journal:4:kill", 2),  # third row written, its journal record not
    ("write:out.csv.journal:4:torn", 2),  # its journal record torn
    ("write:out.csv.journal:8:kill", N),  # every row committed, killed before the final checkpoint
]


@pytest.mark.parametrize("fault,committed", KILLS, ids=[k[0] for k in KILLS])
def test_kill_at_write_boundary_then_resume(fault, committed, inputs, reference, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    args = ("run", str(inputs), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1",
            "--threads", "1")
    r = run_faulty(fault, *args)
    assert r.returncode == -signal.SIGKILL, r.stderr
    r = run_cli(*args, "--summary-json", str(tmp_path / "s.json"))
    assert r.returncode == EXIT_OK, r.stderr
    assert_exact(out, reference)
    import json

    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["skipped_resume"] == committed and summary["total"] == N - committed
    assert "Traceback" not in r.stderr


def test_resume_appends_in_place(inputs, reference, trained_model_dir, tmp_path):
    """A resume run that finds nothing torn only appends: the same inode, the old bytes intact."""
    out = tmp_path / "out.csv"
    some = sorted(str(p) for p in inputs.iterdir())[:3]
    assert run_cli("run", *some, "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1").returncode == 0
    before, inode = out.read_bytes(), out.stat().st_ino
    r = run_cli("run", str(inputs), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1")
    assert r.returncode == EXIT_OK, r.stderr
    assert out.stat().st_ino == inode and out.read_bytes().startswith(before)
    assert_exact(out, reference)


@pytest.mark.parametrize("target", ["out.csv", "out.csv.journal"])
def test_disk_full_on_each_file_same_message_and_guarantee(target, inputs, reference, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    args = ("run", str(inputs), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1")
    r = run_faulty(f"write:{target}:4:enospc", *args)
    assert r.returncode == EXIT_OUTPUT, r.stderr
    assert "No space left on device" in r.stderr
    assert f"the 2 rows written before the failure are intact in {out}" in r.stderr
    assert "Traceback" not in r.stderr
    rows = rows_of(out)
    assert [x["source"] for x in rows] == sorted(reference)[:2]
    assert run_cli(*args).returncode == EXIT_OK
    assert_exact(out, reference)


def test_interrupted_rename_keeps_previous_results(inputs, reference, trained_model_dir, tmp_path):
    """Without --resume: killed while renaming the finished partial file -> the previous results
    are intact and the new ones are complete in the partial file beside them."""
    out = tmp_path / "out.csv"
    out.write_text("previous,results\n")
    r = run_faulty("replace:out.csv:1:kill", "run", str(inputs), "--model", str(trained_model_dir), "-o", str(out),
                   "-k", "1")
    assert r.returncode == -signal.SIGKILL
    assert out.read_text() == "previous,results\n"
    assert_exact(tmp_path / ".out.csv.partial", reference)


@pytest.mark.parametrize("target", ["out.csv", "out.csv.journal"])
def test_kill_during_compaction(target, inputs, reference, trained_model_dir, tmp_path):
    """A replaced input is classified again and its old row removed by replacing output and journal
    together; a kill between the two renames is finished by the next run."""
    d = tmp_path / "in"
    shutil.copytree(inputs, d)
    ref = {s.replace(str(inputs), str(d)): label for s, label in reference.items()}
    out = tmp_path / "out.csv"
    args = ("run", str(d), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1")
    assert run_cli(*args).returncode == EXIT_OK
    names = sorted(ref)
    donor = next(s for s in names if ref[s] != ref[names[0]])
    shutil.copyfile(donor, names[0])  # the first image now shows another shape
    ref[names[0]] = ref[donor]
    r = run_faulty(f"replace:{target}:1:kill", *args)
    assert r.returncode == -signal.SIGKILL, r.stderr
    r = run_cli(*args, "--summary-json", str(tmp_path / "s.json"))
    assert r.returncode == EXIT_OK, r.stderr
    assert_exact(out, ref)


def test_file_deleted_between_listing_and_reading(inputs, trained_model_dir, tmp_path):
    d = tmp_path / "in"
    shutil.copytree(inputs, d)
    names = sorted(p.name for p in d.iterdir())
    out = tmp_path / "out.csv"
    args = ("run", str(d), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1")
    r = run_faulty(f"open:{names[1]}:1:delete", *args)
    assert r.returncode == EXIT_INPUT_FAILURES, r.stderr
    status = {os.path.basename(x["source"]): x["status"] for x in rows_of(out)}
    assert status == {n: "missing" if n == names[1] else "ok" for n in names}


def test_file_replaced_between_listing_and_reading(inputs, reference, trained_model_dir, tmp_path):
    """The row is about the picture read; the key kept is the one listed, so the next run sees a
    changed file, classifies it again and keeps one row."""
    names = sorted(reference)
    victim = tmp_path / "photo.jpg"
    shutil.copyfile(names[0], victim)
    donor = next(s for s in names if reference[s] != reference[names[0]])
    out = tmp_path / "out.csv"
    args = ("run", str(victim), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1")
    r = run_faulty("open:photo.jpg:1:swap", *args, data=Path(donor))
    assert r.returncode == EXIT_OK, r.stderr
    assert [x["top1_label"] for x in rows_of(out)] == [reference[donor]]
    r = run_cli(*args)
    assert r.returncode == EXIT_OK and "skipped" not in r.stderr, r.stderr
    assert [(x["source"], x["top1_label"]) for x in rows_of(out)] == [(str(victim), reference[donor])]


NO_DAC = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")  # root without its read-anything power


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_unreadable_is_retried_after_chmod_and_not_before(inputs, reference, trained_model_dir, tmp_path):
    d = tmp_path / "in"
    shutil.copytree(inputs, d)
    ref = {s.replace(str(inputs), str(d)): label for s, label in reference.items()}
    victim = sorted(ref)[3]
    os.chmod(victim, 0)
    out = tmp_path / "out.csv"
    args = ("run", str(d), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1", "--no-cache")
    env = {k: v for k, v in os.environ.items() if k != "EDGECLASS_FAULT"}
    first = subprocess.run([*NO_DAC, sys.executable, "-m", "edgeclass", *args], capture_output=True, text=True, env=env)
    assert first.returncode == EXIT_INPUT_FAILURES, first.stderr
    assert {x["source"]: x["status"] for x in rows_of(out)}[victim] == "unreadable"
    again = subprocess.run([*NO_DAC, sys.executable, "-m", "edgeclass", *args], capture_output=True, text=True, env=env)
    assert again.returncode == EXIT_OK and "6 skipped" in again.stderr  # permanent until something changes
    os.chmod(victim, 0o644)
    fixed = subprocess.run([*NO_DAC, sys.executable, "-m", "edgeclass", *args], capture_output=True, text=True, env=env)
    assert fixed.returncode == EXIT_OK, fixed.stderr
    assert_exact(out, ref)


def test_not_a_video_is_permanent(inputs, trained_model_dir, tmp_path):
    fake = tmp_path / "holiday.mp4"
    fake.write_bytes(b"this is not a video at all\n" * 100)
    out = tmp_path / "out.csv"
    args = ("run", str(fake), "--model", str(trained_model_dir), "-o", str(out), "--resume")
    r = run_cli(*args)
    assert r.returncode == EXIT_INPUT_FAILURES
    assert rows_of(out)[0]["status"] in ("corrupt", "stream_error")
    r = run_cli(*args)
    assert r.returncode == EXIT_OK and "1 skipped" in r.stderr  # not redone (and not exit 1) every cron run
    assert len(rows_of(out)) == 1


def test_same_file_twice_or_by_two_spellings_is_one_row(inputs, trained_model_dir, tmp_path):
    name = sorted(p.name for p in inputs.iterdir())[0]
    spellings = [str(inputs / name), f"{inputs}//{name}", f"{inputs}/./{name}", f"{inputs}/../{inputs.name}/{name}"]
    out = tmp_path / "out.csv"
    r = run_cli("run", *spellings, str(inputs), "--model", str(trained_model_dir), "-o", str(out), "--resume")
    assert r.returncode == EXIT_OK, r.stderr
    rows = rows_of(out)
    assert len(rows) == N and rows[0]["source"] == spellings[0]
    # relative spelling from another working directory, next run: still the same input
    r = run_cli("run", os.path.join(inputs.name, name), "--model", str(trained_model_dir), "-o", str(out), "--resume",
                cwd=inputs.parent)
    assert r.returncode == EXIT_OK and "1 skipped" in r.stderr
    assert len(rows_of(out)) == N


def test_journal_ahead_of_output_after_power_cut(inputs, reference, trained_model_dir, tmp_path):
    """The fsync policy's promise: a power cut may lose the rows after the last checkpoint, in any
    combination of the two files; the next --resume redoes exactly those. Simulated by cutting
    the output back (journal records now point past its end), or zeroing its tail."""
    out = tmp_path / "out.csv"
    args = ("run", str(inputs), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1")
    assert run_cli(*args).returncode == EXIT_OK
    journal = out.with_name("out.csv.journal")
    lines = journal.read_text().splitlines()
    assert lines[0] == MAGIC and lines[-1] == f"S\t{out.stat().st_size}"  # synced at the end of the run
    journal.write_text("\n".join(lines[:-1]) + "\n")  # as if the last checkpoint never reached the disk
    data = out.read_bytes()
    third_end = int(lines[3].split("\t")[1])
    out.write_bytes(data[:third_end] + b"\0" * 40)  # rows 4-6 lost, zeros where the file grew
    r = run_cli(*args, "--summary-json", str(tmp_path / "s.json"))
    assert r.returncode == EXIT_OK, r.stderr
    assert_exact(out, reference)
    import json

    assert json.loads((tmp_path / "s.json").read_text())["skipped_resume"] == 3


def test_corrupt_ir_is_a_model_error(trained_model_dir, inputs, tmp_path):
    bad = tmp_path / "model"
    shutil.copytree(trained_model_dir, bad)
    for xml in bad.glob("model_*.xml"):
        xml.write_text(xml.read_text()[:500])
    for args in (("run", str(inputs), "--model", str(bad)), ("info", str(bad))):
        r = run_cli(*args)
        assert r.returncode == EXIT_MODEL, (args, r.stderr)
        assert "Traceback" not in r.stderr and "cannot read" in r.stderr


BAD_OPTIONS = [
    ("run", "x.jpg", "--precision", "fp64"),
    ("run", "x.jpg", "--top-k", "0"),
    ("run", "x.jpg", "--format", "xml"),
    ("run", "x.jpg", "--threads", "0"),
    ("run", "x.jpg", "--max-runtime", "-1"),
    ("run", "x.jpg", "--resume"),
    ("run",),
    ("info", "--bogus"),
    ("frobnicate",),
]


@pytest.mark.parametrize("args", BAD_OPTIONS, ids=[" ".join(a) for a in BAD_OPTIONS])
def test_bad_options_exit_2_without_traceback(args, tmp_path):
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "Traceback" not in r.stderr + r.stdout and r.stderr.strip()


def test_outputs_checked_before_any_work(trained_model_dir, inputs, tmp_path):
    """A directory as -o, an unwritable --summary-json: exit 6 at once, nothing classified."""
    cases = [("-o", str(tmp_path)), ("--summary-json", str(tmp_path)),
             ("--summary-json", "/proc/edgeclass/none.json"), ("-o", "/proc/edgeclass/x.csv")]
    for opt, value in cases:
        r = run_cli("run", str(inputs), "--model", str(tmp_path / "no-model-here"), opt, value)
        assert r.returncode == EXIT_OUTPUT, (opt, value, r.stderr)  # before the model is even looked for
        assert "Traceback" not in r.stderr and value in r.stderr


def test_inference_error_is_a_row_not_a_crash(trained_model_dir):
    """OpenVINO refusing one input (here a tensor of the wrong shape, through the real request
    pool) gives that input an `error` row; the inputs around it are classified."""
    import numpy as np

    from edgeclass.engine import Classifier, EngineOptions
    from edgeclass.modelfiles.folder import ModelDir
    from edgeclass.results import WorkItem
    from edgeclass.run.pipeline import Pipeline

    with Classifier(ModelDir(trained_model_dir), EngineOptions(precision="fp32")) as clf:
        h, w = clf.metadata.preprocess.input_size
        items = [WorkItem("a", lambda: np.zeros((h, w, 3), np.uint8)),
                 WorkItem("bad", lambda: np.zeros((5, 7, 3), np.uint8)),
                 WorkItem("c", lambda: np.full((h, w, 3), 200, np.uint8))]
        rows = [d.result for d in Pipeline(clf, 1, workers=1).run(items)]
    assert [(r.source, r.status.value) for r in rows] == [("a", "ok"), ("bad", "error"), ("c", "ok")]
    assert rows[1].error.startswith("inference failed:") and "[1,5,7,3]" in rows[1].error
    assert rows[0].predictions and rows[2].predictions


def test_row_without_journal_record_never_survives_a_changed_file(inputs, reference, trained_model_dir, tmp_path):
    """Killed after the third row was written but before its journal record; the file is then
    replaced by another picture: the next run classifies the new picture, the old row is gone."""
    d = tmp_path / "in"
    shutil.copytree(inputs, d)
    ref = {s.replace(str(inputs), str(d)): label for s, label in reference.items()}
    names = sorted(ref)
    out = tmp_path / "out.csv"
    args = ("run", str(d), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1")
    r = run_faulty("write:out.csv.journal:4:kill", *args)
    assert r.returncode == -signal.SIGKILL
    assert len(rows_of(out)) == 3  # the third row is in the file, its record is not
    donor = next(s for s in names if ref[s] != ref[names[2]])
    shutil.copyfile(donor, names[2])
    ref[names[2]] = ref[donor]
    assert run_cli(*args).returncode == EXIT_OK
    assert_exact(out, ref)


def test_fsync_policy_order(inputs, trained_model_dir, tmp_path):
    """What the README states: with --resume the output is fsynced before the journal's final
    checkpoint record is written and fsynced; without, the partial file is fsynced, renamed over
    the output, then its folder fsynced."""
    trace = tmp_path / "trace.log"
    env = {**os.environ, "PYTHONPATH": str(FAULTS), "EDGECLASS_TRACE": str(trace)}
    out = tmp_path / "out.csv"
    base = [sys.executable, "-m", "edgeclass", "run", str(inputs), "--model", str(trained_model_dir), "-o", str(out)]
    assert subprocess.run([*base, "--resume"], env=env, capture_output=True).returncode == EXIT_OK
    lines = trace.read_text().splitlines()
    ours = [line for line in lines if line.startswith("fsync") and str(tmp_path) in line]
    assert ours[-2:] == [f"fsync {out}", f"fsync {out}.journal"], lines
    assert out.with_name("out.csv.journal").read_text().splitlines()[-1] == f"S\t{out.stat().st_size}"
    trace.unlink()
    out2 = tmp_path / "plain.csv"
    base[-1] = str(out2)
    assert subprocess.run(base, env=env, capture_output=True).returncode == EXIT_OK
    lines = [line for line in trace.read_text().splitlines() if str(tmp_path) in line or "plain.csv" in line]
    assert lines == [f"fsync {tmp_path}/.plain.csv.partial", "replace .plain.csv.partial plain.csv",
                     f"fsync {tmp_path}"], lines
