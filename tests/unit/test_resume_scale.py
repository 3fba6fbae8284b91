"""`--resume` at a year's scale, in process: the journal (version 4: hashed keys, prefix-coded
paths), its fast reader against its full reader, the compact done set's promises, the upgrade of
an older journal (a real SIGKILL during it), and the folder listing that feeds them. Outputs are
written through the real results ledger; rows are Results (no model)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO
from edgeclass.media.inputs import expand_inputs, prefetch, unique_sources
from edgeclass.results import Prediction, Result, Status
from edgeclass.run.journal import (
    MAGIC,
    MAGIC_V3,
    Journal,
    Record,
    SourceKey,
    journal_path,
    read_digest,
    read_records,
    source_key,
)
from edgeclass.run.ledger import open_ledger
from edgeclass.run.resume import DoneSet

MODEL, OTHER = "shapes@0123456789ab", "shapes@ba9876543210"


def _result(source: str, status: Status = Status.OK) -> Result:
    if status is not Status.OK:
        return Result(source, status, "failed")
    return Result(source, status, "", (Prediction(1, "square", 0.9),))


def write_run(out: Path, sources: list[str], model: str = MODEL, status: dict[str, Status] | None = None) -> list[str]:
    """A `--resume` run that classifies every source it does not find done; returns those."""
    ledger = open_ledger(out, "csv", 1, True, None, lambda m: None, model)
    todo = [s for s in sources if not ledger.state.is_done(s)]
    done: set[str] = set()
    for s in todo:
        ledger.append(_result(s, (status or {}).get(s, Status.OK)), source_key(s), done)
    ledger.commit(done, clean=True)
    ledger.close()
    return todo


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "in"
    for day in ("2026-12-05", "2026-12-06"):
        (d / day).mkdir(parents=True)
        for i in range(5):
            (d / day / f"snap_{i:03d}.jpg").write_bytes(b"x" * (i + 1))
    return d


def listed(folder: Path) -> list[str]:
    return [s.path for s in expand_inputs([str(folder)])]


def test_fast_reader_agrees_with_full_reader(tmp_path):
    path = tmp_path / "out.csv.journal"
    j = Journal(path, 0)
    statuses = ["ok", "empty", "unreadable", "error", "corrupt", "missing"]
    for i in range(40):
        model = MODEL if i < 25 else ("" if i < 30 else OTHER)
        j.add(Record("D", 10 * i + 10, SourceKey(f"/in/d{i // 7}/a\tb\udcff{i}.jpg", i, 1000 + i, 7), statuses[i % 6],
                     model))
        if i % 9 == 0:
            j.add(Record("S", 10 * i + 10))
    j.close()
    j = Journal(path, path.stat().st_size)  # a second run appends: its first record shares nothing
    j.add(Record("D", 500, SourceKey("/in/d0/late.jpg", 1, 2, 3), "ok", MODEL))
    j.add(Record("L", 510))
    j.close()
    with open(path, "ab") as fh:
        fh.write(b"D\t520\t0123")  # a torn last line
    records, good = read_records(path)
    digest = read_digest(path)
    assert len(records) == len(digest.kinds) == 40 + 5 + 2 and digest.ends[-1] == good
    assert [ord(r.kind) for r in records] == digest.kinds.tolist()
    assert [r.pos for r in records] == digest.pos.tolist()
    d = [r for r in records if r.kind == "D"]
    assert [r.id_and_key() for r in d] == list(zip(digest.ids.tolist(), digest.keys.tolist()))
    assert [r.status for r in d] == [digest.status_names[i] for i in digest.status]
    assert [r.model for r in d] == [digest.model_names[i] for i in digest.model]
    assert d[3].key.identity == "/in/d0/a\tb\udcff3.jpg" and d[-1].key.identity == "/in/d0/late.jpg"
    # the key is made from what the record was written with: the same file, the same hashes
    assert d[0].id_and_key() == Record("D", 0, SourceKey("/in/d0/a\tb\udcff0.jpg", 0, 1000, 99), "ok").id_and_key()


def test_a_damaged_line_stops_both_readers_at_the_same_place(tmp_path):
    path = tmp_path / "out.csv.journal"
    j = Journal(path, 0)
    for i in range(5):
        j.add(Record("D", i + 1, SourceKey(f"/in/{i}.jpg", 1, 2, 3), "ok", MODEL))
    j.close()
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"\tok\t", b"\tok\tx\t")  # one field too many
    path.write_bytes(b"\n".join(lines))
    records, good = read_records(path)
    digest = read_digest(path)
    assert len(records) == len(digest.kinds) == 2 and int(digest.ends[-1]) == good


def test_journal_is_small_and_the_done_set_compact(tmp_path):
    """<= 110 bytes per input on disk for camera-like paths; <= 20 bytes per input in memory."""
    out = tmp_path / "out.csv"
    d = tmp_path / "data" / "incoming" / "cam1" / "2026-12-06"
    d.mkdir(parents=True)
    sources = []
    for i in range(2000):
        p = d / f"snap_20261206_{i // 60:04d}{i % 60:02d}_{i % 1000:03d}.jpg"
        p.write_bytes(b"")
        sources.append(str(p))
    write_run(out, sources, status={s: Status.EMPTY for s in sources})
    size = journal_path(out).stat().st_size
    assert size / len(sources) <= 110, size / len(sources)
    ledger = open_ledger(out, "csv", 1, True, None, lambda m: None, MODEL)
    assert isinstance(ledger.state.done, DoneSet) and len(ledger.state.done) == len(sources)
    assert ledger.state.done.nbytes() / len(sources) <= 20
    assert all(ledger.state.is_done(s) for s in sources[:50])
    ledger.close()


def test_every_promise_of_the_done_set(folder, tmp_path):
    out = tmp_path / "out.csv"
    files = listed(folder)
    status = {files[0]: Status.ERROR, files[1]: Status.UNREADABLE, files[2]: Status.CORRUPT}
    assert write_run(out, files, status=status) == files
    assert write_run(out, files) == [files[0]]  # `error`: every run; the rest are done
    with open(files[3], "ab") as fh:
        fh.write(b"more")  # touched: size and mtime change
    os.utime(files[4], ns=(1, os.stat(files[4]).st_mtime_ns + 1))  # touched: mtime alone
    time.sleep(0.05)  # past a coarse clock tick: the chmods below change the ctime
    os.chmod(files[1], 0o600)  # a chmod changes the ctime: `unreadable` is tried again
    os.chmod(files[2], 0o600)  # ... a permanent failure is not
    assert write_run(out, files) == [files[1], files[3], files[4]]
    assert write_run(out, files) == []
    # rows of another model: kept and skipped, counted apart; redone when asked
    ledger = open_ledger(out, "csv", 1, True, None, lambda m: None, OTHER)
    entries = [ledger.state.entry(s) for s in files]
    assert all(e.done and e.other_model for e in entries)
    assert entries[2].status == "corrupt" and entries[5].status == "ok"
    ledger.close()
    ledger = open_ledger(out, "csv", 1, True, None, lambda m: None, OTHER, True)
    assert not any(ledger.state.is_done(s) for s in files)
    assert ledger.state.entry(str(tmp_path / "not-there.jpg")) is None
    ledger.close()


def test_relative_spellings_and_listing_are_one_identity(folder, tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    write_run(out, listed(folder))
    monkeypatch.chdir(folder.parent)
    ledger = open_ledger(out, "csv", 1, True, None, lambda m: None, MODEL)
    rel = os.path.join("in", "2026-12-05", "snap_000.jpg")
    assert ledger.state.is_done(rel) and ledger.state.is_done("./in/../in/2026-12-05/snap_000.jpg")
    sources = list(expand_inputs(["in"]))
    assert sources[0].path == rel and sources[0].identity == str(folder / "2026-12-05" / "snap_000.jpg")
    assert all(ledger.state.is_done(s) for s in sources)
    ledger.close()


def test_a_shrinking_folder_drops_nothing(folder, tmp_path):
    out = tmp_path / "out.csv"
    files = listed(folder)
    write_run(out, files)
    before = out.read_bytes()
    for f in files[:6]:
        os.unlink(f)  # archived away
    assert write_run(out, listed(folder)) == []
    assert out.read_bytes() == before
    assert sum(r.kind == "D" for r in read_records(journal_path(out))[0]) == len(files)  # every record kept


def test_older_journal_upgraded_once_in_place(folder, tmp_path):
    out = tmp_path / "out.csv"
    files = listed(folder)
    write_run(out, files)
    records, _ = read_records(journal_path(out))
    v3 = [MAGIC_V3] + [f"D\t{r.pos}\t{source_key(r.key.identity).size}\t{source_key(r.key.identity).mtime_ns}\t"
                       f"{source_key(r.key.identity).ctime_ns}\t{r.status}\t{r.model}\t{r.key.identity}"
                       if r.kind == "D" else f"{r.kind}\t{r.pos}" for r in records]
    journal_path(out).write_text("\n".join(v3) + "\n")
    assert write_run(out, files) == []  # nothing redone
    assert journal_path(out).read_text().startswith(MAGIC + "\n")
    assert [r for r in read_records(journal_path(out))[0] if r.kind == "D"] == [r for r in records if r.kind == "D"]


def test_kill_during_the_upgrade_leaves_the_old_journal_usable(folder, tmp_path):
    out = tmp_path / "out.csv"
    files = listed(folder)
    write_run(out, files)
    records, _ = read_records(journal_path(out))
    v3 = "\n".join([MAGIC_V3] + [f"D\t{r.pos}\t1\t2\t3\tok\t{r.model}\t{r.key.identity}" if r.kind == "D"
                                 else f"{r.kind}\t{r.pos}" for r in records]) + "\n"
    journal_path(out).write_text(v3)
    code = ("import sys\nfrom pathlib import Path\nfrom edgeclass.run.ledger import open_ledger\n"
            f"open_ledger(Path(sys.argv[1]), 'csv', 1, True, None, print, {MODEL!r}).close()\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests" / "faultinject"),
           "EDGECLASS_FAULT": "replace:.journal:1:kill"}
    r = subprocess.run([sys.executable, "-c", code, str(out)], env=env, cwd=REPO, capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert journal_path(out).read_text() == v3  # the old journal, whole
    assert write_run(out, files) == files  # sizes and times of the hand-made journal differ: redone...
    rows = out.read_text().splitlines()[1:]
    assert sorted(row.split(",")[0] for row in rows) == sorted(files)  # ... once each
    assert not [p for p in tmp_path.iterdir() if ".compact-" in p.name]


def test_listing_gives_identity_and_stat_and_remembers_nothing_it_need_not(folder, tmp_path):
    (folder / "notes.txt").write_text("not an image")
    (folder / ".jpg").write_bytes(b"")  # a hidden file without an extension
    sources = list(expand_inputs([str(folder)]))
    assert [s.path for s in sources] == sorted(str(p) for p in folder.rglob("snap_*.jpg"))
    assert all(s.identity == s.path and s.stat.st_size == os.stat(s.path).st_size and s.distinct for s in sources)
    one = str(folder / "2026-12-05" / "snap_000.jpg")
    day = str(folder / "2026-12-05")
    for args in ([str(folder), one], [str(folder), str(folder)], [one, str(folder)], [day, str(folder)]):
        got = [s.path for s in unique_sources(expand_inputs(args))]
        assert sorted(got) == sorted(set(got)) and len(got) == 10, args  # every input once
        assert not any(s.distinct for s in expand_inputs(args))
    assert all(s.distinct for s in expand_inputs([str(folder / "2026-12-05"), str(folder / "2026-12-06")]))


def test_prefetch_keeps_order_and_does_not_sit_on_a_slow_source():
    stop = threading.Event()
    assert [x for x in prefetch(iter(range(5000)), stop, maxsize=64) if x is not None] == list(range(5000))
    gate = threading.Event()

    def slow():
        yield from range(3)
        gate.wait(10)  # a stalled pipe
        yield 3

    got, t0 = [], time.monotonic()
    for x in prefetch(slow(), stop, poll=0.05):
        if x is None and len(got) == 3:
            gate.set()
        elif x is not None:
            got.append(x)
    assert got == [0, 1, 2, 3] and time.monotonic() - t0 < 5

    def broken():
        yield 1
        raise OSError("gone")

    with pytest.raises(OSError, match="gone"):
        list(prefetch(broken(), stop))


def test_a_folder_swapped_for_a_link_or_gone_mid_listing(folder, tmp_path):
    """The listing is lazy: a folder replaced by a link to one already listed is not listed again
    (nothing twice), and a folder that vanished (an unmounted share) lists nothing: its rows stay
    in the output (nothing lost) and nothing else is disturbed."""
    out = tmp_path / "out.csv"
    files = listed(folder)
    write_run(out, files)
    (folder / "2026-12-07").mkdir()
    (folder / "2026-12-07" / "new.jpg").write_bytes(b"new")
    sources = expand_inputs([str(folder)])
    first = next(sources)
    os.rename(folder / "2026-12-06", tmp_path / "archived")
    os.symlink(folder / "2026-12-05", folder / "2026-12-06")  # the day's folder is now a link to one listed
    rest = [s.path for s in sources]
    assert [first.path, *rest] == listed(folder)[:5] + [str(folder / "2026-12-07" / "new.jpg")]
    assert write_run(out, [first.path, *rest]) == [str(folder / "2026-12-07" / "new.jpg")]
    rows = [r.split(",")[0] for r in out.read_text().splitlines()[1:]]
    assert sorted(rows) == sorted(files + [str(folder / "2026-12-07" / "new.jpg")])  # nothing lost, once each
