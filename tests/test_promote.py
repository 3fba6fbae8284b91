"""`edgeclass promote NEW --link models/current`: the atomic swap, the refusal after a refusing
`compare`, --force, --rollback, and a `run` that keeps the model it opened while the link moves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import read_csv, run_cli
from test_compare import build_models

import train_test_model


@pytest.fixture(scope="module")
def built(tmp_path_factory, trained_dir, accurate_dir) -> dict[str, Path]:
    return build_models(tmp_path_factory.getbasetemp() / "update-models", trained_dir, accurate_dir)


@pytest.fixture
def models(built, tmp_path) -> Path:
    """A models/ folder of real model folders (copies: each test records its own verdicts)."""
    root = tmp_path / "models"
    root.mkdir()
    for name in ("colours", "shapes", "shuffled"):
        shutil.copytree(built[name], root / name, ignore=shutil.ignore_patterns("comparisons.json", ".edgeclass.lock"))
    return root


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("promote-val")
    train_test_model.write_images(root, per_class=4, seed=606, variant="colours")
    return root


def model_id(folder: Path) -> str:
    from edgeclass.modelfiles.folder import ModelDir

    return ModelDir(folder).model_id("fp32")


def summary_of_run(link: Path, inputs: Path, tmp: Path) -> dict:
    summary = tmp / "summary.json"
    proc = run_cli("run", str(inputs), "--model", str(link), "--summary-json", str(summary), "--no-cache", "-q")
    assert proc.returncode == 0, proc.stderr
    return json.loads(summary.read_text())


def test_promote_swaps_the_link_and_rolls_back(models, labelled, tmp_path):
    link = models / "current"
    proc = run_cli("promote", str(models / "colours"), "--link", str(link))
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(link) == "colours"  # relative: the models folder can move
    assert summary_of_run(link, labelled, tmp_path)["model_id"] == model_id(models / "colours")
    # the candidate is compared with what is live, then promoted
    proc = run_cli("compare", str(link), str(models / "shapes"), "--validation", str(labelled), "--max-drop", "100",
                   "--no-cache")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("promote", str(models / "shapes"), "--link", str(link))
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(link) == "shapes" and "was colours" in proc.stdout
    assert summary_of_run(link, labelled, tmp_path)["model_id"] == model_id(models / "shapes")
    history = json.loads((models / "current.promotions.json").read_text())["history"]
    assert [h["target"] for h in history] == ["colours"]
    assert not [p for p in os.listdir(models) if p.startswith(".current")]  # no temporary link left
    # back to the previous model, then nothing more to go back to
    proc = run_cli("promote", "--rollback", "--link", str(link))
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(link) == "colours"
    assert summary_of_run(link, labelled, tmp_path)["model_id"] == model_id(models / "colours")
    proc = run_cli("promote", "--rollback", "--link", str(link))
    assert proc.returncode == 2 and "nothing to roll back to" in proc.stderr and "Traceback" not in proc.stderr
    assert os.readlink(link) == "colours"


def test_promote_refuses_what_compare_refused_unless_forced(models, labelled):
    link = models / "current"
    os.symlink("colours", link)
    proc = run_cli("compare", str(link), str(models / "shuffled"), "--validation", str(labelled), "--no-cache")
    assert proc.returncode == 5, proc.stderr
    proc = run_cli("promote", str(models / "shuffled"), "--link", str(link))
    assert proc.returncode == 5 and "refused" in proc.stderr and "--force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.readlink(link) == "colours" and not (models / "current.promotions.json").exists()
    proc = run_cli("promote", str(models / "shuffled"), "--link", str(link), "--force")
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(link) == "shuffled" and "--force" in proc.stderr
    proc = run_cli("promote", "--rollback", "--link", str(link))
    assert proc.returncode == 0 and os.readlink(link) == "colours", proc.stderr
    # a later compare of the same pair that keeps NEW lifts the refusal (the last compare counts)
    proc = run_cli("compare", str(link), str(models / "shuffled"), "--validation", str(labelled),
                   "--max-drop", "100", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("promote", str(models / "shuffled"), "--link", str(link))
    assert proc.returncode == 0, proc.stderr


def test_a_running_job_keeps_the_model_it_opened(models, labelled, tmp_path):
    link = models / "current"
    os.symlink("colours", link)
    images = sorted(str(p) for p in labelled.rglob("*.png"))
    summary = tmp_path / "summary.json"
    job = subprocess.Popen([sys.executable, "-m", "edgeclass", "run", "-", "--model", str(link), "--no-cache", "-q",
                            "--summary-json", str(summary)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job.stdin.write(images[0] + "\n")
        job.stdin.flush()
        header = job.stdout.readline()
        first = job.stdout.readline()  # a row: the job has opened its model
        assert first.startswith(images[0]), (first, job.poll())
        proc = run_cli("promote", str(models / "shuffled"), "--link", str(link))
        assert proc.returncode == 0, proc.stderr
        assert os.readlink(link) == "shuffled"
        job.stdin.write("".join(p + "\n" for p in images[1:]))
        job.stdin.close()
        rest = job.stdout.read()
        assert job.wait(timeout=300) == 0, job.stderr.read()
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    rows = read_csv(header + first + rest)
    assert [r["source"] for r in rows] == images
    # every row came from the model the job opened: the colours model's answers under its names
    colours = {r["source"]: r for r in read_csv(run_cli("run", *images, "--model", str(models / "colours"),
                                                          "--no-cache").stdout)}
    assert [(r["top1_label"], r["top1_score"]) for r in rows] == \
           [(colours[s]["top1_label"], colours[s]["top1_score"]) for s in images]
    old_id = model_id(models / "colours")
    assert json.loads(summary.read_text())["model_id"] == old_id
    assert {r["model"] for r in rows} == {old_id}  # every row names the model it came from
    # the next job gets the new model
    assert summary_of_run(link, labelled, tmp_path)["model_id"] == model_id(models / "shuffled")


def test_promote_bad_input_exits_with_a_message(models, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep.txt").write_text("mine")
    cases = [
        (("promote", str(models / "nope"), "--link", str(models / "current")), 3, "does not exist"),
        (("promote", str(tmp_path), "--link", str(models / "current")), 3, "not a model folder"),
        (("promote", str(models / "colours"), "--link", str(real)), 2, "is a real folder"),
        (("promote", str(models / "colours"), "--link", str(tmp_path / "no" / "current")), 2, "does not exist"),
        (("promote", "--link", str(models / "current")), 2, "give the model folder"),
        (("promote", "--rollback", "--link", str(models / "current")), 2, "nothing to roll back to"),
        (("promote", str(models / "colours"), "--rollback", "--link", str(models / "current")), 2, "takes no NEW"),
    ]
    for args, code, message in cases:
        proc = run_cli(*args)
        assert proc.returncode == code, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert (real / "keep.txt").read_text() == "mine" and not real.is_symlink()
    assert not os.path.lexists(models / "current")
    # a link whose previous target has gone: rollback says so
    os.symlink("colours", models / "current")
    assert run_cli("promote", str(models / "shapes"), "--link", str(models / "current")).returncode == 0
    shutil.rmtree(models / "colours")
    proc = run_cli("promote", "--rollback", "--link", str(models / "current"))
    assert proc.returncode == 3 and "no longer holds a model" in proc.stderr
    assert os.readlink(models / "current") == "shapes"
