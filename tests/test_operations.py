"""What docs/operations.md tells operators to do works as it says: rotating results under
--resume without classifying the inbox again."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np

import train_test_model
from conftest import read_csv, run_cli


def _photos(folder, names, seed):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        img = train_test_model.make_image(i % 4, rng, variant="colours")
        cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def test_rotating_results_with_moved_inputs_classifies_nothing_twice(trained_model_dir, tmp_path):
    inbox, sorted_, data = tmp_path / "incoming", tmp_path / "sorted", tmp_path / "data"
    data.mkdir()
    _photos(inbox, [f"a{i}.jpg" for i in range(6)], seed=1)
    job = ("run", str(inbox), "--model", str(trained_model_dir), "-o", str(data / "results.csv"), "--resume",
           "--copy-into", str(sorted_), "--move", "-q")
    r = run_cli(*job)
    assert r.returncode == 0, r.stderr
    first = read_csv(data / "results.csv")
    assert len(first) == 6 and not list(inbox.iterdir())  # every photo filed away
    # the rotation docs/operations.md gives, word for word
    rotate = ("flock results.csv.lock sh -c 'mv results.csv results-2026-12.csv && "
              "mv results.csv.journal results-2026-12.csv.journal'")
    assert subprocess.run(rotate, shell=True, cwd=data).returncode == 0
    _photos(inbox, ["b0.jpg", "b1.jpg", "b2.jpg"], seed=2)
    r = run_cli(*job)
    assert r.returncode == 0, r.stderr
    second = read_csv(data / "results.csv")
    assert sorted(row["source"].rsplit("/", 1)[-1] for row in second) == ["b0.jpg", "b1.jpg", "b2.jpg"]
    assert read_csv(data / "results-2026-12.csv") == first  # the archive untouched
    assert sum(len(files) for files in [list(d.iterdir()) for d in sorted_.iterdir()]) == 9
