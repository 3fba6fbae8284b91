"""Output formats as objects and the three ledgers, in process: rows as Results (no model)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from edgeclass.errors import EXIT_USAGE, UsageError
from edgeclass.results import Prediction, Result, Status
from edgeclass.run.journal import source_key
from edgeclass.run.ledger import JournaledLedger, ReplaceLedger, StreamLedger, open_ledger, partial_path
from edgeclass.run.output import FORMATS, format_for, get_format


def test_the_registry_resolves_names_and_extensions():
    assert list(FORMATS) == ["csv", "jsonl", "parquet"]
    for fmt in FORMATS.values():
        assert get_format(fmt.name) is fmt and get_format(fmt) is fmt
        for ext in fmt.extensions:
            assert format_for(Path(f"out{ext.upper()}")) is fmt
    assert format_for(None) is FORMATS["csv"] and format_for(Path("out.txt")) is FORMATS["csv"]
    assert format_for(Path("out.csv"), "jsonl") is FORMATS["jsonl"]  # --format wins over the extension
    with pytest.raises(UsageError) as info:
        get_format("xml")
    assert info.value.exit_code == EXIT_USAGE


def test_where_resume_appends():
    out = Path("/x/out.parquet")
    assert FORMATS["csv"].journaled(Path("/x/o.csv")) == (Path("/x/o.csv"), FORMATS["csv"])
    assert FORMATS["parquet"].journaled(out) == (Path("/x/.out.parquet.log.jsonl"), FORMATS["jsonl"])
    assert not FORMATS["parquet"].streams and FORMATS["csv"].streams and FORMATS["jsonl"].streams


@pytest.fixture
def images(tmp_path) -> list[str]:
    d = tmp_path / "in"
    d.mkdir()
    names = [d / f"{i}.jpg" for i in range(3)]
    for i, p in enumerate(names):
        p.write_bytes(b"x" * (i + 1))
    return [str(p) for p in names]


def _result(source: str) -> Result:
    return Result(source, Status.OK, "", (Prediction(1, "cat", 0.75), Prediction(2, "dog", 0.25)))


def write(ledger, sources: list[str], clean: bool = True) -> str | None:
    done: set[str] = set()
    try:
        for s in sources:
            done.add(s)
            ledger.append(_result(s), source_key(s), done)
        return ledger.commit(done, clean)
    finally:
        ledger.close()


def rows(out: Path) -> list[dict]:
    if out.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(out.read_text())))
    if out.suffix == ".jsonl":
        return [json.loads(line) for line in out.read_text().splitlines()]
    import pyarrow.parquet as pq

    return pq.read_table(out).to_pylist()


def test_stdout_gets_flushed_rows(images):
    stream = io.StringIO()
    ledger = open_ledger(None, "csv", 2, False, stream, print, "m@0123456789ab")
    assert isinstance(ledger, StreamLedger) and ledger.state is None
    assert write(ledger, images) is None
    assert [r["source"] for r in csv.DictReader(io.StringIO(stream.getvalue()))] == images
    with pytest.raises(UsageError, match="stdout"):
        open_ledger(None, "parquet", 2, False, stream, print)


@pytest.mark.parametrize("name", ["csv", "jsonl", "parquet"])
def test_replace_on_a_clean_finish_only(name, images, tmp_path):
    out = tmp_path / f"out.{name}"
    ledger = open_ledger(out, FORMATS[name], 2, False, None, print, "m@0123456789ab")
    assert isinstance(ledger, ReplaceLedger)
    assert write(ledger, images[:2]) is None
    assert [r["source"] for r in rows(out)] == images[:2] and not partial_path(out).exists()
    note = write(open_ledger(out, FORMATS[name], 2, False, None, print), images, clean=False)
    assert "was not replaced" in note and partial_path(out).exists()
    assert [r["source"] for r in rows(out)] == images[:2]  # the previous results kept


@pytest.mark.parametrize("name", ["csv", "jsonl", "parquet"])
def test_resume_appends_and_skips(name, images, tmp_path):
    out = tmp_path / f"out.{name}"
    events: list[str] = []
    ledger = open_ledger(out, FORMATS[name], 2, True, None, events.append, "m@0123456789ab")
    assert isinstance(ledger, JournaledLedger)
    write(ledger, images[:2])
    ledger = open_ledger(out, FORMATS[name], 2, True, None, events.append, "m@0123456789ab")
    assert [ledger.state.is_done(s) for s in images] == [True, True, False]
    write(ledger, images[2:])
    got = rows(out)
    assert [r["source"] for r in got] == images and {r["model"] for r in got} == {"m@0123456789ab"}
    assert events == []


def test_a_parquet_output_without_its_log_keeps_its_rows(images, tmp_path):
    out = tmp_path / "out.parquet"
    write(open_ledger(out, "parquet", 2, False, None, print), images[:1])  # written without --resume
    write(open_ledger(out, "parquet", 2, True, None, print), images[1:])
    assert [r["source"] for r in rows(out)] == images


def test_the_lock_is_released_when_opening_fails(images, tmp_path):
    from edgeclass.errors import OutputError

    out = tmp_path / "out.csv"
    out.write_text("source,label\n/x.jpg,cat\n")
    for _ in range(2):  # the second open would find the lock held
        with pytest.raises(OutputError, match="other columns"):
            open_ledger(out, "csv", 2, True, None, print)
