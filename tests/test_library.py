"""docs/library.md's worked example, run as it is written: classify a folder from Python and read
typed rows (in a subprocess, in a folder holding `photos/` and `models/current`)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def example() -> str:
    text = (REPO / "docs" / "library.md").read_text()
    section = text.split("## Worked example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_worked_example_runs_as_written(trained_model_dir, image_sets, tmp_path):
    shutil.copytree(image_sets["run"], tmp_path / "photos")
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "current").symlink_to(trained_model_dir)
    r = subprocess.run([sys.executable, "-c", example()], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    photos = sorted(p.name for p in (tmp_path / "photos").iterdir())
    assert len(lines) == len(photos) + 1
    assert re.fullmatch(r"photos/broken\.jpg: corrupt \(.+\)", lines[0])
    assert all(re.fullmatch(r"photos/\S+\.jpg: \w+ [01]\.\d\d", line) for line in lines[1:-1]), lines
    assert re.fullmatch(rf"{len(photos) - 1} ok, 1 failed, model \S+@[0-9a-f]{{12}}, exit code 1", lines[-1])
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["source"] for row in rows] == [f"photos/{p}" for p in photos]
    assert all(row["top3_label"] for row in rows if row["status"] == "ok")


def test_a_refused_plan_says_the_cli_exit_code(tmp_path):
    r = subprocess.run([sys.executable, "-c", example()], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "(the CLI would exit 3)" in r.stderr  # no models/current here
