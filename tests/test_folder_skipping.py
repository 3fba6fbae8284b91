"""`--resume` does not list folders unchanged since a run settled them (edgeclass/run/folders.py):
real `edgeclass run` processes on small images with the committed test model. New files in old
and new folders are found; untouched folders are not listed (the summary's counters, and a file
replaced in place that only --rescan or the daily full pass finds); the grace window; a kill while
the folder records are written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from conftest import REPO, read_csv, run_cli, synthetic_photo
from edgeclass.errors import EXIT_OK, EXIT_USAGE

FAST = {"EDGECLASS_FOLDER_GRACE_S": "0.5"}  # this file system keeps nanoseconds: a short grace window


def photo(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(synthetic_photo(64, 64, seed=seed), cv2.COLOR_RGB2BGR))


@pytest.fixture
def tree(tmp_path) -> Path:
    d = tmp_path / "in"
    for i, name in enumerate(("day1/a.jpg", "day1/b.jpg", "day2/c.jpg", "day2/d.jpg")):
        photo(d / name, i)
    time.sleep(0.6)  # past the (shortened) grace window
    return d


def resume(tree: Path, out: Path, model: Path, *extra: str, env: dict | None = None) -> dict:
    s = out.with_name("s.json")
    r = run_cli("run", str(tree), "--model", str(model), "-o", str(out), "--resume", "-k", "1", "--summary-json",
                str(s), *extra, env={**FAST, **(env or {})})
    assert r.returncode in (EXIT_OK, 1), r.stderr
    return json.loads(s.read_text())


def sources(out: Path) -> list[str]:
    return sorted(row["source"] for row in read_csv(out))


def test_new_files_in_old_and_new_folders_are_found_and_unchanged_ones_not_listed(tree, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    s = resume(tree, out, trained_model_dir)
    assert (s["total"], s["folders_listed"], s["folders_not_listed"]) == (4, 3, 0)
    s = resume(tree, out, trained_model_dir)
    assert (s["total"], s["skipped_resume"], s["folders_listed"], s["folders_not_listed"]) == (0, 4, 0, 3)
    photo(tree / "day1" / "new.jpg", 10)  # in an old folder
    photo(tree / "day2" / "sub" / "new.jpg", 11)  # in a new one
    s = resume(tree, out, trained_model_dir)
    assert (s["total"], s["skipped_resume"], s["folders_listed"], s["folders_not_listed"]) == (2, 4, 3, 1)
    assert sources(out) == sorted(str(p) for p in tree.rglob("*.jpg"))  # every input once


def test_a_file_replaced_in_place_is_found_by_rescan_and_by_the_daily_full_pass(tree, trained_model_dir, tmp_path):
    """The chosen behaviour (docs/cron.md): a file rewritten in place (same name, new bytes) does
    not change its folder, so a `--resume` run that does not list the folder does not see it;
    `--rescan`, or the full listing a folder gets once its record is a day old, does."""
    out = tmp_path / "out.csv"
    resume(tree, out, trained_model_dir)
    resume(tree, out, trained_model_dir)  # settled, then trusted
    victim = tree / "day1" / "a.jpg"
    victim.write_bytes(b"rewritten in place")
    s = resume(tree, out, trained_model_dir)
    assert (s["total"], s["folders_not_listed"]) == (0, 3)  # the folder was not listed: not seen
    s = resume(tree, out, trained_model_dir, "--rescan")
    assert (s["total"], s["counts"], s["folders_not_listed"]) == (1, {"corrupt": 1}, 0)
    assert {r["source"]: r["status"] for r in read_csv(out)}[str(victim)] == "corrupt"
    assert sources(out) == sorted(str(p) for p in tree.rglob("*.jpg"))  # its old row replaced: once
    resume(tree, out, trained_model_dir)
    photo(victim, 3)  # back to an image, in place again
    time.sleep(0.6)
    s = resume(tree, out, trained_model_dir, env={"EDGECLASS_FULL_PASS_EVERY_S": "0.5"})  # records older than that
    assert (s["total"], s["ok"], s["folders_not_listed"]) == (1, 1, 0)
    assert sources(out) == sorted(str(p) for p in tree.rglob("*.jpg"))


def test_the_grace_window(tree, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    slow = {"EDGECLASS_FOLDER_GRACE_S": "600"}  # every folder changed within the grace of the passes below
    resume(tree, out, trained_model_dir, env=slow)
    s = resume(tree, out, trained_model_dir, env=slow)
    assert (s["skipped_resume"], s["folders_listed"], s["folders_not_listed"]) == (4, 3, 0)  # not trusted
    resume(tree, out, trained_model_dir)  # past the (short) window: settled now
    s = resume(tree, out, trained_model_dir)
    assert (s["skipped_resume"], s["folders_listed"], s["folders_not_listed"]) == (4, 0, 3)


def test_rescan_goes_with_resume(trained_model_dir, tmp_path):
    r = run_cli("run", str(tmp_path), "--model", str(trained_model_dir), "--rescan", "-o", str(tmp_path / "o.csv"))
    assert r.returncode == EXIT_USAGE and "--rescan goes with --resume" in r.stderr


@pytest.mark.parametrize("fault", ["write:out.csv.journal:7:kill", "write:out.csv.journal:8:torn"])
def test_a_kill_while_the_folder_records_are_written(fault, tree, trained_model_dir, tmp_path):
    """Journal writes: the header, 4 input records, the folder records (in, day1, day2), the final
    checkpoint. A kill after the first folder record, or one that tears the third: no row lost,
    none twice; the folders recorded whole are trusted, the others listed."""
    out = tmp_path / "out.csv"
    args = ("run", str(tree), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1")
    env = {**os.environ, **FAST, "PYTHONPATH": str(REPO / "tests" / "faultinject"), "EDGECLASS_FAULT": fault,
           "EDGECLASS_SYNC_EVERY_S": "1e9"}
    r = subprocess.run([sys.executable, "-m", "edgeclass", *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    lines = (tmp_path / "out.csv.journal").read_bytes().split(b"\n")
    assert [line[:1] for line in lines[1:] if line] == [b"D"] * 4 + [b"F"] * (1 if fault.endswith("kill") else 3)
    s = resume(tree, out, trained_model_dir)
    assert (s["total"], s["skipped_resume"]) == (0, 4) and s["folders_not_listed"] == (1 if "kill" in fault else 2)
    assert sources(out) == sorted(str(p) for p in tree.rglob("*.jpg"))
    s = resume(tree, out, trained_model_dir)
    assert (s["total"], s["skipped_resume"], s["folders_not_listed"]) == (0, 4, 3)
