"""--copy-into / --link-into DIR: which file lands in which folder, never touching the originals."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import train_test_model
from conftest import read_csv, run_cli


def _tree(root: Path) -> dict[str, list[str]]:
    """{folder: sorted entry names} of a sorted tree."""
    return {d.name: sorted(p.name for p in d.iterdir()) for d in sorted(root.iterdir()) if d.is_dir()}


@pytest.fixture
def photos(tmp_path) -> Path:
    """Eight photos, two of them with the same name in different folders, and a broken file."""
    d = tmp_path / "in"
    rng = np.random.default_rng(77)
    for i in range(8):
        sub = d / ("a" if i < 4 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        name = "same.jpg" if i in (0, 4) else f"p{i}.jpg"
        img = train_test_model.make_image(i % 4, rng, variant="colours")
        cv2.imwrite(str(sub / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    (d / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return d


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def _expected(rows: list[dict]) -> dict[str, str]:
    """source -> folder it belongs in, from the run's own rows (ok rows only)."""
    return {r["source"]: ("_uncertain" if r["top1_label"] == "unknown" else r["top1_label"])
            for r in rows if r["status"] == "ok"}


def _cut_below_some(model_dir: Path, photos: Path) -> float:
    """A --min-score between this model's own sorted top-1 scores on ``photos`` (the lowest two
    fall under it): the scores, and so any fixed cut, differ between CPU classes."""
    r = run_cli("run", str(photos), "--model", str(model_dir), "--min-score", "0", "--max-failures", "1")
    assert r.returncode == 0, r.stderr
    scores = sorted(float(row["top1_score"]) for row in read_csv(r.stdout) if row["status"] == "ok")
    assert len(scores) == 8 and scores[1] < scores[2], scores
    return (scores[1] + scores[2]) / 2


def test_copy_into_sorts_by_label_and_min_score(trained_model_dir, photos, tmp_path):
    before = _snapshot(photos)
    cut = _cut_below_some(trained_model_dir, photos)
    out = tmp_path / "sorted"
    r = run_cli("run", str(photos), "--model", str(trained_model_dir), "--copy-into", str(out),
                "--min-score", f"{cut:.6f}", "--max-failures", "1")
    assert r.returncode == 0, r.stderr
    rows = read_csv(r.stdout)
    expected = _expected(rows)
    assert len(expected) == 8 and list(expected.values()).count("_uncertain") == 2
    assert len(set(expected.values())) >= 2
    by_content = {}
    for folder, names in _tree(out).items():
        for name in names:
            by_content.setdefault((out / folder / name).read_bytes(), []).append(folder)
    for source, folder in expected.items():
        assert by_content[Path(source).read_bytes()] == [folder], source  # exactly once, in its folder
    assert sum(len(v) for v in _tree(out).values()) == 8  # the broken file is not sorted
    both = [n for names in _tree(out).values() for n in names if n.startswith("same")]
    assert len(both) == 2 and "same.jpg" in both  # same name, two files: the second gets name~hash.jpg
    assert _snapshot(photos) == before  # originals untouched


def test_link_into_is_idempotent_under_resume(trained_model_dir, photos, tmp_path):
    out, csv = tmp_path / "links", tmp_path / "r.csv"
    args = ("run", str(photos), "--model", str(trained_model_dir), "--link-into", str(out), "-o", str(csv),
            "--resume", "--max-failures", "1")
    assert run_cli(*args).returncode == 0
    first = _tree(out)
    # a new file, then the same command again: only the new file is added
    img = train_test_model.make_image(3, np.random.default_rng(5), variant="colours")
    cv2.imwrite(str(photos / "b" / "new.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    expected = _expected(read_csv(csv))
    placed = {}
    for folder, names in _tree(out).items():
        for name in names:
            link = out / folder / name
            assert link.is_symlink() and os.path.isabs(os.readlink(link))
            placed.setdefault(os.readlink(link), []).append(folder)
    assert placed == {str(Path(s).resolve()): [f] for s, f in expected.items()}
    assert sum(map(len, _tree(out).values())) == sum(map(len, first.values())) + 1
    # and again without --resume: every file classified again, nothing duplicated
    assert run_cli(*args[:-3], "--max-failures", "1").returncode == 0
    assert sum(map(len, _tree(out).values())) == len(expected)


def test_hardlinks(trained_model_dir, photos, tmp_path):
    out = tmp_path / "hard"
    r = run_cli("run", str(photos / "a"), "--model", str(trained_model_dir), "--link-into", str(out), "--hardlink",
                "--max-failures", "1")
    assert r.returncode == 0, r.stderr
    expected = _expected(read_csv(r.stdout))
    assert len(expected) == 4
    for source, folder in expected.items():
        assert os.path.samefile(out / folder / Path(source).name, source)


def test_move_only_when_asked(trained_model_dir, photos, tmp_path):
    r = run_cli("run", str(photos), "--model", str(trained_model_dir), "--move")
    assert r.returncode == 2 and "--copy-into" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("run", str(photos), "--model", str(trained_model_dir), "--copy-into", str(tmp_path / "x"),
                "--link-into", str(tmp_path / "y"))
    assert r.returncode == 2 and not (tmp_path / "x").exists()
    content = {str(p): p.read_bytes() for p in (photos / "b").iterdir()}
    out = tmp_path / "moved"
    r = run_cli("run", str(photos / "b"), "--model", str(trained_model_dir), "--copy-into", str(out), "--move")
    assert r.returncode == 0, r.stderr
    expected = _expected(read_csv(r.stdout))
    assert list(os.scandir(photos / "b")) == []  # moved away
    for source, folder in expected.items():
        assert (out / folder / Path(source).name).read_bytes() == content[source]


# ----------------------------------------------------------------------------- --move cut by a kill
FAULTS = Path(__file__).resolve().parent / "faultinject"


@pytest.fixture(params=["same-fs", "cross-fs"])
def inbox(request, photos, tmp_path):
    """photos/b, on the sorted tree's file system or (cross-fs) on /dev/shm's tmpfs."""
    if request.param == "same-fs":
        yield photos / "b"
        return
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system than the test's temporary folder")
    d = Path(tempfile.mkdtemp(dir=shm, prefix="edgeclass-inbox-"))
    for p in (photos / "b").iterdir():
        shutil.copy2(p, d / p.name)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


@pytest.mark.parametrize("resume", [False, True], ids=["rerun", "resume"])
@pytest.mark.parametrize("step", ["link", "unlink"])
def test_move_cut_by_a_kill_loses_nothing_and_the_next_run_finishes_it(step, resume, inbox, trained_model_dir,
                                                                       tmp_path, request):
    """SIGKILL just before the move links p5.jpg into place (across file systems: after the
    copy), or just before it removes the original: the file is whole in the inbox (and, after
    the link, also whole in its folder), never partial; the next run, with or without --resume,
    finishes every move (--resume: p5's row was written before the kill; when p5 is not in its
    place yet, it is classified again and its old row superseded)."""
    content = {p.name: p.read_bytes() for p in inbox.iterdir()}
    assert "p5.jpg" in content and len(content) == 4
    out, csv = tmp_path / "moved", tmp_path / "rows.csv"
    args = ("run", str(inbox), "--model", str(trained_model_dir), "--copy-into", str(out), "--move", "-o", str(csv),
            *(("--resume",) if resume else ()))
    # across file systems the first link (the same-file-system attempt) fails with EXDEV: the
    # kill comes at the second, which publishes the durable copy
    n = 2 if step == "link" and "cross-fs" in request.node.callspec.id else 1
    killed = run_cli(*args, env={"PYTHONPATH": str(FAULTS), "EDGECLASS_FAULT": f"{step}:/p5.jpg:{n}:kill"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (inbox / "p5.jpg").read_bytes() == content["p5.jpg"]  # the original is untouched
    placed = [p for p in _all_files(out) if p.name == "p5.jpg"]
    assert len(placed) == (1 if step == "unlink" else 0)
    assert all(p.read_bytes() == content["p5.jpg"] for p in placed)  # whole, not partial
    for p in _all_files(out):  # everything moved so far is whole; nothing is anywhere twice but p5
        if not p.name.startswith("."):
            assert p.read_bytes() == content[p.name] and (p.name == "p5.jpg" or not (inbox / p.name).exists())

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    files = _all_files(out)
    assert list(inbox.iterdir()) == []  # every move finished, p5's too
    assert sorted(p.name for p in files) == sorted(content)  # each once; no ~copies, no temporaries left
    for p in files:
        assert p.read_bytes() == content[p.name]
    rows = {Path(r["source"]).name: r for r in read_csv(csv)}
    assert "p5.jpg" in rows and (out / _expected([rows["p5.jpg"]])[rows["p5.jpg"]["source"]] / "p5.jpg").is_file()
    if resume:  # one row per file in all: the resumed run did not classify p5 again
        assert sorted(rows) == sorted(content) and len(read_csv(csv)) == len(content)


def test_move_into_its_own_input_folder_never_deletes(trained_model_dir, photos):
    """`run IN --copy-into IN --move`, twice: the second run finds each file already in its place
    (the same directory entry), which is not an interrupted move to finish."""
    inbox = photos / "b"
    content = {p.name: p.read_bytes() for p in inbox.iterdir()}
    for _ in range(2):
        r = run_cli("run", str(inbox), "--model", str(trained_model_dir), "--copy-into", str(inbox), "--move")
        assert r.returncode == 0, r.stderr[-2000:]
        files = _all_files(inbox)
        assert sorted(p.name for p in files) == sorted(content)
        assert all(p.read_bytes() == content[p.name] and p.parent != inbox for p in files)


def test_copy_cut_by_a_kill_is_made_by_the_resumed_run(trained_model_dir, photos, tmp_path):
    """Copies are made before the row is written: SIGKILL just before p5.jpg's copy is renamed
    into place leaves no row for it, so the --resume run classifies it again and copies it (a
    written row always means the file is in place); the killed run's temporary copy is removed."""
    inbox = photos / "b"
    before = _snapshot(inbox)
    out, csv = tmp_path / "sorted", tmp_path / "rows.csv"
    args = ("run", str(inbox), "--model", str(trained_model_dir), "--copy-into", str(out), "-o", str(csv), "--resume")
    killed = run_cli(*args, env={"PYTHONPATH": str(FAULTS), "EDGECLASS_FAULT": "replace:/p5.jpg:1:kill"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert "p5.jpg" not in {Path(r["source"]).name for r in read_csv(csv)}  # no row: not in place either
    assert not [p for p in _all_files(out) if p.name == "p5.jpg"]
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = read_csv(csv)
    assert sorted(Path(r["source"]).name for r in rows) == sorted(p.name for p in inbox.iterdir())  # once each
    expected = _expected(rows)
    files = _all_files(out)
    assert sorted(p.name for p in files) == sorted(Path(s).name for s in expected)  # no temporaries left
    for source, folder in expected.items():
        assert (out / folder / Path(source).name).read_bytes() == Path(source).read_bytes()
    assert _snapshot(inbox) == before  # copies: the originals untouched


def test_move_resume_leaves_failed_files_alone(trained_model_dir, photos, tmp_path):
    """--move --resume redoes only ok images still in the inbox: a corrupt file (never sorted)
    is skipped by the next run, not classified again on every run."""
    inbox = photos / "a"
    out, csv = tmp_path / "moved", tmp_path / "rows.csv"
    args = ("run", str(inbox), "--model", str(trained_model_dir), "--copy-into", str(out), "--move", "-o", str(csv),
            "--resume", "--max-failures", "1")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert [p.name for p in inbox.iterdir()] == ["broken.jpg"]  # the rest moved
    rows = read_csv(csv)
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "1 skipped (already in output)" in second.stderr
    assert read_csv(csv) == rows and [p.name for p in inbox.iterdir()] == ["broken.jpg"]
    assert [r["status"] for r in rows if r["source"].endswith("broken.jpg")] == ["corrupt"]
