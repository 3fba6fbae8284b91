"""The `model` column and resume across models, in process: outputs and journals written as the
release before model ids wrote them, opened by the real results ledger (lock, resume, writers),
rows as Results (no model, no subprocess)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from edgeclass.results import Prediction, Result, Status
from edgeclass.run.output.columns import header, legacy_header
from edgeclass.run.journal import MAGIC, journal_path, read_records, source_key
from edgeclass.run.ledger import Ledger, open_ledger

OLD_MODEL, NEW_MODEL = "shapes@0123456789ab", "shapes@ba9876543210"


@pytest.fixture
def images(tmp_path) -> list[str]:
    d = tmp_path / "in"
    d.mkdir()
    out = []
    for i, name in enumerate(["a.jpg", "b, \"quoted\".jpg", "c.jpg", "d.jpg"]):  # a name CSV must quote
        (d / name).write_bytes(b"x" * (i + 1))
        out.append(str(d / name))
    return out


def _result(source: str, label: str, score: float) -> Result:
    return Result(source, Status.OK, "", (Prediction(1, label, score), Prediction(2, "other", 1 - score)))


def _legacy_row(fmt: str, source: str, label: str) -> bytes:
    values = [source, None, None, "ok", "", 1, label, 0.75, 2, "other", 0.25]
    if fmt == "jsonl":
        return (json.dumps(dict(zip(legacy_header(2), values)), ensure_ascii=False) + "\n").encode()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else f"{v:.6f}" if isinstance(v, float) else v
                                                   for v in values])
    return buf.getvalue().encode()


def write_legacy(out: Path, fmt: str, sources: list[str], journal: bool) -> None:
    """The previous release's output (no `model` column) and journal (version 2), a torn tail."""
    data = (",".join(legacy_header(2)) + "\n").encode() if fmt == "csv" else b""
    lines = ["edgeclass-journal 2"]
    for s in sources:
        data += _legacy_row(fmt, s, "old")
        k = source_key(s)
        lines.append(f"D\t{len(data)}\t{k.size}\t{k.mtime_ns}\t{k.ctime_ns}\tok\t{s}")
    out.write_bytes(data + b"/torn")
    if journal:
        journal_path(out).write_text("\n".join(lines) + "\n")


def read(out: Path, fmt: str) -> list[dict]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(out.read_text())))
    return [json.loads(line) for line in out.read_text().splitlines()]


def session(out: Path, fmt: str, model: str, redo: bool = False) -> tuple[Ledger, list[str]]:
    events: list[str] = []
    return open_ledger(out, fmt, 2, True, None, events.append, model, redo), events


def classify(s: Ledger, sources: list[str], label: str) -> int:
    """Write a row for every source the session does not find done; returns how many."""
    done: set[str] = set()
    todo = [x for x in sources if not s.state.is_done(x)]
    for x in todo:
        s.append(_result(x, label, 0.9), source_key(x), done)
    s.commit(done, clean=True)
    s.close()
    return len(todo)


@pytest.mark.parametrize("journal", [True, False], ids=["journal-2", "no-journal"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_previous_release_output_upgraded_then_redone(fmt, journal, images, tmp_path):
    out = tmp_path / f"out.{fmt}"
    write_legacy(out, fmt, images[:3], journal)
    s, events = session(out, fmt, NEW_MODEL)
    assert s.state.upgraded == 3 and "3 rows written before model ids now have a model column" in events[0]
    assert [s.state.is_done(x) for x in images] == [True, True, True, False]  # kept by default
    assert [s.state.other_model(x) for x in images] == [True, True, True, False]  # ... as another model's
    assert classify(s, images, "new") == 1
    rows = read(out, fmt)
    assert list(rows[0]) == header(2)
    assert [(r["source"], r["model"] or None, r["top1_label"]) for r in rows] == [
        (images[0], None, "old"), (images[1], None, "old"), (images[2], None, "old"), (images[3], NEW_MODEL, "new")]
    assert journal_path(out).read_text().startswith(MAGIC + "\n")

    s, events = session(out, fmt, NEW_MODEL, redo=True)
    assert s.state.upgraded == 0  # once
    assert classify(s, images, "newer") == 3
    assert "removed 3 rows of inputs classified again" in events[-1]
    rows = read(out, fmt)
    assert sorted((r["source"], r["model"], r["top1_label"]) for r in rows) == sorted(
        [(images[0], NEW_MODEL, "newer"), (images[1], NEW_MODEL, "newer"), (images[2], NEW_MODEL, "newer"),
         (images[3], NEW_MODEL, "new")])


def test_rows_of_another_model_kept_counted_then_redone(images, tmp_path):
    out = tmp_path / "out.csv"
    assert classify(session(out, "csv", OLD_MODEL)[0], images[:2], "old") == 2
    s, _ = session(out, "csv", NEW_MODEL)
    assert [s.state.other_model(x) for x in images] == [True, True, False, False]
    assert classify(s, images, "new") == 2
    s, _ = session(out, "csv", NEW_MODEL, redo=True)
    assert classify(s, images, "newer") == 2
    rows = read(out, "csv")
    assert [(r["source"], r["model"], r["top1_label"]) for r in rows] == [
        (images[2], NEW_MODEL, "new"), (images[3], NEW_MODEL, "new"),
        (images[0], NEW_MODEL, "newer"), (images[1], NEW_MODEL, "newer")]
    records, _ = read_records(journal_path(out))
    assert [r.model for r in records if r.kind == "D"] == [NEW_MODEL] * 4


def test_output_without_journal_is_adopted_with_the_models_of_its_rows(images, tmp_path):
    """A run without --resume wrote the output; a --resume run reads each row's model."""
    out = tmp_path / "out.csv"
    classify(session(out, "csv", OLD_MODEL)[0], images[:2], "old")
    journal_path(out).unlink()
    s, _ = session(out, "csv", OLD_MODEL)
    assert [s.state.is_done(x) for x in images] == [True, True, False, False]
    assert not any(s.state.other_model(x) for x in images)
    s.close()


def test_a_model_id_with_a_tab_stays_one_field(images, tmp_path):
    out = tmp_path / "out.csv"
    odd = "my\tmodel@0123456789ab"
    classify(session(out, "csv", odd)[0], images[:1], "x")
    assert read(out, "csv")[0]["model"] == "my\\tmodel@0123456789ab"
    s, _ = session(out, "csv", odd)
    assert s.state.is_done(images[0]) and not s.state.other_model(images[0])
    s.close()


def test_other_columns_are_refused(images, tmp_path):
    from edgeclass.errors import OutputError

    out = tmp_path / "out.csv"
    out.write_text("source,label\n/x.jpg,cat\n")
    with pytest.raises(OutputError, match="other columns"):
        session(out, "csv", NEW_MODEL)
