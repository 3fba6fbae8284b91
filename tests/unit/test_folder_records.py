"""`--resume` skipping folders unchanged since a run settled them (edgeclass/run/folders.py), in
process: the journal's F records (both readers, a damaged one, compaction), the rules of trust,
and whole passes through the real walk, done set and results ledger (rows are Results, no model)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from edgeclass.media.inputs import FOLDER, expand_inputs, unique_sources
from edgeclass.results import Status
from edgeclass.run import folders as folders_mod
from edgeclass.run.folders import GRACE_NS, Folders
from edgeclass.run.journal import FolderRecord, Journal, Record, SourceKey, journal_path, read_digest, read_records
from edgeclass.run.ledger import open_ledger
from edgeclass.run.resume import compact_journaled
from edgeclass.run.runner import skip_done
from edgeclass.results import RunCounts

from test_resume_scale import MODEL, OTHER, _result  # the same made-up models and rows


def a_pass(out: Path, args: list[str], model: str = MODEL, status: dict[str, Status] | None = None,
           rescan: bool = False, stop_after: int | None = None, started_ns: int | None = None,
           redo_other_models: bool = False) -> tuple[list[str], Folders, RunCounts]:
    """One `--resume` run as runner.run makes it: the walk with the run's folder memory, each
    input looked up once, the others classified (``status``), F records written at the commit.
    ``stop_after``: stopped (--max-runtime) after that many inputs were taken."""
    ledger = open_ledger(out, "csv", 1, True, None, lambda m: None, model, redo_other_models)
    state = ledger.state
    folders = Folders(state.folder_records, state.model, state.redo_other_models, rescan, started_ns)
    state.folders = folders
    counts, done, classified = RunCounts(), set(), []
    taken = 0
    for source in unique_sources(expand_inputs(args, folders=folders)):
        if source.kind == FOLDER:
            source.folder.taken = True
            continue
        if stop_after is not None and taken >= stop_after:
            break
        taken += 1
        if skip_done(source, state, counts):
            continue
        classified.append(source.path)
        result = _result(source.path, (status or {}).get(source.path, Status.OK))
        ledger.append(result, SourceKey(source.identity, source.stat.st_size, source.stat.st_mtime_ns,
                                        source.stat.st_ctime_ns), done)
        folders.row(source.identity, result.status.value)
    ledger.commit(done, clean=stop_after is None)
    ledger.close()
    counts.skipped_resume += folders.skipped_inputs
    return classified, folders, counts


@pytest.fixture
def tree(tmp_path) -> Path:
    """in/day1 (3 files), in/day2 (2 files) with in/day2/sub (1 file), all past the grace window."""
    d = tmp_path / "in"
    for sub, n in (("day1", 3), ("day2", 2), ("day2/sub", 1)):
        (d / sub).mkdir(parents=True)
        for i in range(n):
            (d / sub / f"snap_{i}.jpg").write_bytes(b"x" * (i + 1))
    return d


def past_grace() -> int:
    """A run start that lies past the grace window of everything made until now."""
    return time.time_ns() + GRACE_NS + 10**6


def test_f_records_both_readers_a_damaged_one_and_compaction(tmp_path):
    path = tmp_path / "out.csv.journal"
    j = Journal(path, 0)
    j.add(Record("D", 10, SourceKey("/in/a.jpg", 1, 2, 3), "ok", MODEL))
    folders = [FolderRecord("/in", True, 5, MODEL, 1, 2, 3, 4, 0, 0, ("a\tb", "c\\d", "e\udcff")),
               FolderRecord("/in/a\tb", False, 5, MODEL, 1, 3, 3, 4, 7, 2, ()),
               FolderRecord("/in", True, 6, OTHER, 1, 2, 3, 9, 0, 0, ("c\\d",))]  # the latest for /in
    for f in folders:
        j.add(Record("F", 10, folder=f))
    j.add(Record("S", 10))
    j.close()
    records, good = read_records(path)
    digest = read_digest(path)
    assert [r.folder for r in records if r.kind == "F"] == folders == [f for _, f in digest.folders]
    assert [i for i, _ in digest.folders] == [1, 2, 3] and int(digest.ends[-1]) == good == path.stat().st_size
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"\tu\t", b"\tx\t")  # the second F record damaged: both stop before it
    path.write_bytes(b"\n".join(lines))
    records, good = read_records(path)
    digest = read_digest(path)
    assert len(records) == len(digest.kinds) == 2 and int(digest.ends[-1]) == good
    assert [f for _, f in digest.folders] == folders[:1]


def test_compaction_keeps_the_latest_record_of_each_folder(tree, tmp_path):
    out = tmp_path / "out.csv"
    files = sorted(str(p) for p in tree.rglob("*.jpg"))
    a_pass(out, [str(tree)], status={files[0]: Status.ERROR}, started_ns=past_grace())
    a_pass(out, [str(tree)], rescan=True, started_ns=past_grace())  # the error redone: a compaction is due
    before = {r.folder.path: r.folder for r in read_records(journal_path(out))[0] if r.kind == "F"}
    assert compact_journaled(out, __import__("edgeclass.run.output", fromlist=["FORMATS"]).FORMATS["csv"], 1) == 0
    after = [r.folder for r in read_records(journal_path(out))[0] if r.kind == "F"]
    assert sorted(f.path for f in after) == sorted(before) and all(before[f.path] == f for f in after)


def test_an_unchanged_folder_is_not_listed_and_new_files_are_found(tree, tmp_path):
    out = tmp_path / "out.csv"
    files = sorted(str(p) for p in tree.rglob("*.jpg"))
    classified, folders, _ = a_pass(out, [str(tree)], started_ns=past_grace())
    assert sorted(classified) == files and len(folders.listed_folders) == 4
    classified, folders, counts = a_pass(out, [str(tree)], started_ns=past_grace())
    assert classified == [] and folders.unlisted == 4 and not folders.listed_folders
    assert counts.skipped_resume == len(files)  # the inputs of folders not listed count as skipped
    (tree / "day1" / "new.jpg").write_bytes(b"new")  # day1 changes
    (tree / "day2" / "sub" / "deeper").mkdir()  # sub changes; deeper is new
    (tree / "day2" / "sub" / "deeper" / "x.jpg").write_bytes(b"x")
    classified, folders, counts = a_pass(out, [str(tree)], started_ns=past_grace())
    assert classified == [str(tree / "day1" / "new.jpg"), str(tree / "day2" / "sub" / "deeper" / "x.jpg")]
    assert sorted(folders.listed_folders) == [str(tree / "day1"), str(tree / "day2" / "sub"),
                                             str(tree / "day2" / "sub" / "deeper")]
    assert folders.unlisted == 2 and counts.skipped_resume == len(files)  # in, day2; day1's 3, sub's 1 listed
    assert a_pass(out, [str(tree)], started_ns=past_grace())[1].unlisted == 5


def test_what_a_folder_unchanged_may_hide_is_found_by_rescan_and_the_daily_pass(tree, tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    victim = tree / "day1" / "snap_0.jpg"
    a_pass(out, [str(tree)], started_ns=past_grace())
    with open(victim, "r+b") as fh:  # replaced in place: the file changes, its folder does not
        fh.write(b"yy")
    os.chmod(tree / "day1" / "snap_1.jpg", 0o600)  # a chmod: neither does it
    assert a_pass(out, [str(tree)], started_ns=past_grace())[0] == []  # not listed: not seen (documented)
    assert a_pass(out, [str(tree)], rescan=True, started_ns=past_grace())[0] == [str(victim)]
    with open(victim, "r+b") as fh:
        fh.write(b"zzz")
    assert a_pass(out, [str(tree)], started_ns=past_grace())[0] == []
    later = past_grace() + int(folders_mod.FULL_PASS_EVERY_S * 1e9)  # a day on: the records are too old
    assert a_pass(out, [str(tree)], started_ns=later)[0] == [str(victim)]


def test_the_grace_window(tree, tmp_path):
    """A folder whose mtime or ctime is within GRACE_NS of a pass's start is not settled by it (an
    entry added in the same clock tick, after its listing, would leave the times it recorded)."""
    out = tmp_path / "out.csv"
    times = {str(d): max(os.stat(d).st_mtime_ns, os.stat(d).st_ctime_ns) for d in [tree, *tree.rglob("*")]
             if d.is_dir()}
    newest = max(times.values())
    a_pass(out, [str(tree)], started_ns=newest + GRACE_NS - 1)
    settled = {r.folder.path for r in read_records(journal_path(out))[0] if r.kind == "F" and r.folder.settled}
    assert settled == {d for d, t in times.items() if t < newest}  # the newest is within the window
    _, folders, _ = a_pass(out, [str(tree)], started_ns=newest + GRACE_NS)
    assert sorted(folders.listed_folders) == [d for d, t in times.items() if t == newest]  # listed again: settled
    assert a_pass(out, [str(tree)], started_ns=newest + GRACE_NS + 1)[1].unlisted == 4  # trusted by the next


def test_unsettling_rows_keep_their_folder_listed(tree, tmp_path):
    """`error` (every run), `unreadable` (on a chmod, which does not change the folder), `missing`:
    their folders are listed every run; permanent failures (`corrupt`, `empty`) are settled."""
    out = tmp_path / "out.csv"
    day1, day2, sub = (str(tree / p) for p in ("day1", "day2", "day2/sub"))
    status = {day1 + "/snap_0.jpg": Status.UNREADABLE, day2 + "/snap_0.jpg": Status.ERROR,
              sub + "/snap_0.jpg": Status.CORRUPT}
    a_pass(out, [str(tree)], status=status, started_ns=past_grace())
    classified, folders, _ = a_pass(out, [str(tree)], started_ns=past_grace())
    assert classified == [day2 + "/snap_0.jpg"]  # error: redone
    assert sorted(folders.listed_folders) == [day1, day2] and folders.unlisted == 2  # in, sub
    classified, folders, _ = a_pass(out, [str(tree)], started_ns=past_grace())
    assert classified == [] and sorted(folders.listed_folders) == [day1]  # the unreadable one: until it is readable


def test_a_stopped_run_settles_only_the_folders_it_finished_without_classifying(tree, tmp_path):
    out = tmp_path / "out.csv"
    files = sorted(str(p) for p in tree.rglob("*.jpg"))
    a_pass(out, [str(tree / "day1")], started_ns=past_grace())  # day1 done before
    (tree / "day1" / "late.jpg").write_bytes(b"late")  # day1 changes: listed, one to classify
    classified, _, _ = a_pass(out, [str(tree)], stop_after=5, started_ns=past_grace())
    assert classified == [str(tree / "day1" / "late.jpg"), files[3]]  # day1 finished, day2 not
    latest = {r.folder.path: r.folder for r in read_records(journal_path(out))[0] if r.kind == "F"}
    assert [f.settled for f in latest.values()] == [False]  # day1: it classified; its first record overridden
    classified, folders, _ = a_pass(out, [str(tree)], started_ns=past_grace())
    assert classified == files[4:]  # nothing lost: the rest is found, the rest only
    assert a_pass(out, [str(tree)], started_ns=past_grace())[1].unlisted == 4


def test_another_model_and_redo_other_models(tree, tmp_path):
    out = tmp_path / "out.csv"
    files = sorted(str(p) for p in tree.rglob("*.jpg"))
    a_pass(out, [str(tree)], started_ns=past_grace())
    _, folders, counts = a_pass(out, [str(tree)], model=OTHER, started_ns=past_grace())
    assert folders.unlisted == 0 and counts.kept_other_models == len(files)  # not this model's records: listed
    _, folders, _ = a_pass(out, [str(tree)], model=OTHER, started_ns=past_grace())
    assert folders.unlisted == 4 and folders.skipped_other == len(files)  # the rows of another model, counted
    classified, folders, _ = a_pass(out, [str(tree)], model=OTHER, redo_other_models=True, started_ns=past_grace())
    assert sorted(classified) == files and folders.unlisted == 1  # only the top folder: it holds no input


def test_a_folder_swapped_for_a_link_or_a_mount_gone_loses_nothing(tree, tmp_path):
    out = tmp_path / "out.csv"
    files = sorted(str(p) for p in tree.rglob("*.jpg"))
    a_pass(out, [str(tree)], started_ns=past_grace())
    os.rename(tree / "day2", tmp_path / "archived")  # the top folder changes: listed
    os.symlink(tree / "day1", tree / "day2")  # a link to a folder listed (reached once)
    classified, folders, _ = a_pass(out, [str(tree)], started_ns=past_grace())
    assert classified == [] and str(tree) in folders.listed_folders
    rows = [r.split(",")[0] for r in out.read_text().splitlines()[1:]]
    assert sorted(rows) == files  # nothing lost, nothing twice
    # a child folder known to an unchanged parent that is gone (an unmounted share): nothing listed, no error
    os.unlink(tree / "day2")
    os.rename(tmp_path / "archived", tree / "day2")
    a_pass(out, [str(tree)], started_ns=past_grace())
    a_pass(out, [str(tree)], started_ns=past_grace())
    sub = tree / "day2" / "sub"
    os.rename(sub, tmp_path / "unmounted")  # day2 changes too, so: its listing must not find 'sub'
    assert a_pass(out, [str(tree)], started_ns=past_grace())[0] == []
    rows = [r.split(",")[0] for r in out.read_text().splitlines()[1:]]
    assert sorted(rows) == files


def test_several_roots_and_files_given_directly(tree, tmp_path):
    out = tmp_path / "out.csv"
    files = sorted(str(p) for p in tree.rglob("*.jpg"))
    args = [str(tree / "day1"), str(tree / "day2"), files[0]]
    assert sorted(a_pass(out, args, started_ns=past_grace())[0]) == files
    classified, folders, counts = a_pass(out, args, started_ns=past_grace())
    assert classified == [] and folders.unlisted == 3 and counts.skipped_resume == len(files) + 1  # the file named too
    args = [str(tree), str(tree / "day1")]  # overlapping: every input once
    classified, _, _ = a_pass(out, args, started_ns=past_grace())
    assert classified == []
