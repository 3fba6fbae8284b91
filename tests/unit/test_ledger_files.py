"""The ledger's append-only file and the journal format, in process: real failed writes (a
file-size limit, as on a full disk), torn tails written by hand as a kill leaves them."""

from __future__ import annotations

import errno
import resource
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest

from edgeclass.run.journal import MAGIC, MAGIC_V3, Journal, Record, SourceKey, identity_hash, journal_path, read_records
from edgeclass.run.output.appendfile import AppendFile


@contextmanager
def file_size_limit(limit: int):
    """Writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored), as RLIMIT_FSIZE makes them."""
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, old_handler)


def test_a_failed_write_leaves_whole_records(tmp_path):
    path = tmp_path / "rows.csv"
    f = AppendFile(path, None, b"h\n")
    f.write(b"row1\n")
    with file_size_limit(10):
        with pytest.raises(OSError) as info:
            f.write(b"row2-longer\n")  # 7 + 12 bytes: past the limit after a partial write
    assert info.value.errno == errno.EFBIG
    assert path.read_bytes() == b"h\nrow1\n" and f.position == 7
    f.write(b"row2\n")  # the file goes on from the last whole record
    f.close()
    assert path.read_bytes() == b"h\nrow1\nrow2\n"


def test_reopened_at_a_position_cuts_the_uncommitted_tail(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"h\nrow1\nrow2\npartial ro")
    f = AppendFile(path, 7, b"h\n")  # the journal's last record ends after row1
    f.write(b"row2'\n")
    f.close()
    assert path.read_bytes() == b"h\nrow1\nrow2'\n"


@pytest.mark.parametrize("at", [None, 0])
def test_a_new_file_holds_only_its_header(tmp_path, at):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"old rows\n" * 3)
    f = AppendFile(path, at, b"source,label\n")
    f.close()
    assert path.read_bytes() == b"source,label\n" and f.position == len(b"source,label\n")


def test_journal_reader_stops_at_a_torn_line(tmp_path):
    out = tmp_path / "out.csv"
    line = "D\t20\t5\t100\t200\tok\tshapes@0123456789ab\t/in/a,b.jpg\n"
    data = f"{MAGIC_V3}\n{line}S\t20\nD\t41\t7\t10".encode()  # killed while writing the third record
    journal_path(out).write_bytes(data)
    records, intact = read_records(journal_path(out))
    assert [(r.kind, r.pos) for r in records] == [("D", 20), ("S", 20)]
    assert records[0].key == SourceKey("/in/a,b.jpg", 5, 100, 200)
    assert (records[0].status, records[0].model) == ("ok", "shapes@0123456789ab")
    assert intact == len(f"{MAGIC_V3}\n{line}S\t20\n".encode())


def test_journal_reads_the_release_before_model_ids(tmp_path):
    path = tmp_path / "out.csv.journal"
    path.write_text("edgeclass-journal 2\nD\t20\t5\t100\t200\tcorrupt\t/in/a.jpg\nL\t30\n")
    records, _ = read_records(path)
    assert [(r.kind, r.pos, r.status, r.model) for r in records] == [("D", 20, "corrupt", ""), ("L", 30, "", "")]


def test_journal_appends_after_its_intact_part(tmp_path):
    path = tmp_path / "out.csv.journal"
    path.write_bytes(f"{MAGIC}\nL\t10\nD\t4".encode())  # a torn tail
    records, intact = read_records(path)
    j = Journal(path, intact)
    j.add(Record("D", 25, SourceKey("/in/tab\there.jpg", 1, 2, 3), "ok", "m@1"))
    j.close()
    lines = path.read_text().split("\n")
    assert lines[:2] == [MAGIC, "L\t10"] and lines[3:] == [""]
    kind, pos, ident, key, status, model, shared, rest = lines[2].split("\t")
    assert (kind, pos, status, model, shared, rest) == ("D", "25", "ok", "m@1", "0", "/in/tab\\there.jpg")
    assert int(ident, 16) == identity_hash("/in/tab\there.jpg") % 2**64 and len(key) == 16
    records, _ = read_records(path)
    assert records[-1].key.identity == "/in/tab\there.jpg" and records[-1].model == "m@1"


def test_not_a_journal_is_refused(tmp_path):
    from edgeclass.errors import OutputError

    path = tmp_path / "out.csv.journal"
    path.write_text("something else\n")
    with pytest.raises(OutputError, match="not an edgeclass journal"):
        read_records(path)
