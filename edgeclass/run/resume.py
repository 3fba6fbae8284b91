"""``--resume``: what an output already holds, and keeping output and journal consistent.

The journal (``<output>.journal``, its format in :mod:`edgeclass.run.journal`) records where each
finished input's rows end. The output row is written first, then its record. Whatever a kill
leaves, the next run:

* cuts the output back, in place, to the last record's position (a torn row, or rows written
  just before the kill whose record was not, are dropped and their input redone; a video cut
  short is redone from the start): O(1), nothing else is rewritten;
* ignores a torn last journal line, and records pointing past the end of the output (a power
  cut kept the journal but not the output: see the fsync policy in the README).

An input is skipped when its record says it is done and the file is the same (size, mtime):
``ok`` and the permanent failures (``corrupt``, ``empty``, ``too_large``, a video file's
``stream_error``; ``missing`` until the file appears). ``unreadable`` is retried once its
ctime changes (a chmod or chown), ``error`` (an unexpected failure) on every run. When an input
is redone, the rows of its earlier record are *superseded*: they are removed once, at the end of
the run (or at the start of the next one after a kill), by replacing output and journal
together (:func:`compact`; the only time the output is rewritten).

Rows of another model (the ``model`` of the record is not this run's) are kept and their
inputs skipped, counted apart; with ``redo_other_models`` those inputs are classified again and
their old rows superseded as above.

Outputs of the release before model ids (no ``model`` column, journal ``edgeclass-journal 2``)
are upgraded once, when a ``--resume`` run opens them: every committed row gets an empty
``model`` (null: "made before model ids", another model for ``--redo-other-models``), and output
and journal are replaced together as in a compaction (a kill leaves the old pair, or the new
pair finished by the next run). Such an output without a journal is rewritten alone (atomic
replace), then adopted (:func:`adopt`). No committed row is dropped.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from edgeclass import atomic
from edgeclass.media.inputs import classify_path
from edgeclass.run.journal import (
    Journal,
    Record,
    SourceKey,
    identity,
    intact_size,
    journal_bytes,
    journal_path,
    journal_version,
    read_records,
    read_v1_journal,
    source_key,
)
from edgeclass.run.output.columns import source_to_path

TEMP_TAG = "compact"  # temporaries of compaction and upgrade (a kill's leftovers are removed)
RETRY_ALWAYS = frozenset({"error"})  # unexpected failures: redone on every run
RETRY_ON_CHMOD = frozenset({"unreadable"})  # redone when permissions (ctime) change
LIVE_KINDS = ("stream", "camera")


def _intent_path(output: Path) -> Path:
    return output.with_name(output.name + ".compacting")


@dataclass
class ResumeState:
    """What an output already holds: the latest record of every finished input."""

    done: dict[str, Record] = field(default_factory=dict)
    position: int = 0  # where appending continues
    header_end: int = 0
    cut_bytes: int = 0  # torn or uncommitted output cut off at the start
    superseded: int = 0  # rows removed because their inputs were redone (start-of-run compaction)
    upgraded: int = 0  # rows of the release before model ids given a model column (once)
    model: str = ""  # this run's model (columns.model_text of its id)
    redo_other_models: bool = False  # inputs whose rows came from another model are redone

    def is_done(self, source: str) -> bool:
        rec = self.done.get(identity(source))
        if rec is None or rec.status in RETRY_ALWAYS:
            return False
        if self.redo_other_models and rec.model != self.model:
            return False
        now = source_key(source)
        same = (rec.key.size, rec.key.mtime_ns) == (now.size, now.mtime_ns)
        if rec.status in RETRY_ON_CHMOD:
            return same and rec.key.ctime_ns == now.ctime_ns
        return same

    def status(self, source: str) -> str | None:
        """The status of ``source``'s latest row (None: not in the output)."""
        rec = self.done.get(identity(source))
        return rec.status if rec is not None else None

    def other_model(self, source: str) -> bool:
        """Did another model (or a release before model ids) make ``source``'s rows?"""
        rec = self.done.get(identity(source))
        return rec is not None and rec.model != self.model


def done_inputs(output: Path) -> set[str]:
    """The inputs (absolute paths) an output already holds (the reader of the writer protocol)."""
    records, _ = read_records(journal_path(Path(output)))
    return {r.key.identity for r in _latest(records).values()}


def _latest(records: list[Record]) -> dict[str, Record]:
    return {r.key.identity: r for r in records if r.kind == "D"}


def _valid_prefix(records: list[Record], fmt: ModuleType, output: Path, size: int) -> int:
    """How many records describe rows really in the output: positions within the file (a power
    cut can lose the output's tail but keep the journal's), each ending a complete row (checked
    from the last checkpoint on, and always for the last record: one read of the tail)."""
    n = next((i for i, r in enumerate(records) if r.pos > size), len(records))
    last_sync = max((i for i in range(n) if records[i].kind == "S"), default=-1)
    start = min(last_sync + 1, max(n - 1, 0))
    for ok in fmt.ends_rows(output, [r.pos for r in records[start:n]], size):
        if not ok:
            return start
        start += 1
    return n


def open_resume(output: Path, fmt: ModuleType, top_k: int, model: str = "",
                redo_other_models: bool = False) -> tuple[ResumeState, Journal]:
    """Validate output + journal, cut torn tails in place, finish an interrupted compaction,
    upgrade an output of the release before model ids. ``model``: this run's
    :func:`~edgeclass.run.output.columns.model_text`."""
    jpath = journal_path(output)
    _finish_compaction(output)
    _remove_temps(output)
    state = ResumeState(header_end=fmt.header_size(top_k), model=model, redo_other_models=redo_other_models)
    size = fmt.data_size(output) if output.exists() else 0
    legacy = size > 0 and fmt.is_legacy(output, top_k)  # other columns: OutputError
    if size <= (fmt.legacy_header_size(top_k) if legacy else state.header_end):  # no row: start afresh
        return state, Journal(jpath, 0)
    version = journal_version(jpath)
    if legacy or version == 2:
        upgraded = _upgrade(output, fmt, top_k, legacy, version)
        state, journal = open_resume(output, fmt, top_k, model, redo_other_models)
        state.upgraded = upgraded
        return state, journal
    if version != 3:
        adopt(output, fmt, top_k, state.header_end)
    records, jgood = read_records(jpath)
    n = _valid_prefix(records, fmt, output, size)
    if n < len(records):
        records = records[:n]
        jgood = intact_size(records)
    latest = _latest(records)
    if len(latest) < sum(r.kind == "D" for r in records):  # a redone input's old rows survived a kill
        removed = compact(output, fmt, top_k, records, state.header_end)
        state, journal = open_resume(output, fmt, top_k, model, redo_other_models)
        state.superseded = removed
        return state, journal
    state.done = latest
    state.position = records[-1].pos if records else state.header_end
    state.cut_bytes = size - state.position
    return state, Journal(jpath, jgood)


def _remove_temps(output: Path) -> None:
    """Remove what a compaction or upgrade killed before its intent file left (one directory
    scan). Only this output's temporaries: the caller holds its lock, so they are a dead run's."""
    shapes = [(f".{p.stem}.{TEMP_TAG}-", p.suffix) for p in (output, journal_path(output), _intent_path(output))]
    with contextlib.suppress(OSError):
        for entry in os.scandir(output.parent):
            for prefix, suffix in shapes:
                middle = entry.name[len(prefix): len(entry.name) - len(suffix)]
                if entry.name.startswith(prefix) and entry.name.endswith(suffix) and middle.isdigit():
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _upgrade(output: Path, fmt: ModuleType, top_k: int, legacy: bool, version: int | None) -> int:
    """Give an output of the release before model ids this release's layout; returns its rows.
    With its journal (version 2): output and journal replaced together, every committed row kept
    (null model), superseded rows removed, uncommitted ones cut (as any resume would). Without:
    the output alone, every complete row kept, then :func:`adopt` builds the journal."""
    if version == 2:
        records, _ = read_records(journal_path(output))
        records = records[:_valid_prefix(records, fmt, output, fmt.data_size(output))]
        old_header = fmt.legacy_header_size(top_k) if legacy else fmt.header_size(top_k)
        return _rewrite(output, fmt, top_k, records, old_header, legacy)[1]
    data = fmt.read_bytes(output)
    rows = fmt.upgrade_rows(data[fmt.legacy_header_size(top_k):], top_k)
    tmp = atomic.temp_sibling(output, TEMP_TAG)
    _write_durable(tmp, fmt.header_bytes(top_k) + b"".join(raw for raw, _, _ in rows))
    atomic.replace_file(tmp, output)
    adopt(output, fmt, top_k, fmt.header_size(top_k))
    return len(rows)


def adopt(output: Path, fmt: ModuleType, top_k: int, header_end: int) -> None:
    """Build a journal for an output written without one (a run without --resume, or an
    edgeclass 0.1 journal): every complete row is kept, consecutive rows of one source form one
    record keyed by the old journal's size and mtime, or the file's as it is now, with the model
    its rows name. Once, O(rows)."""
    jpath = journal_path(output)
    old = read_v1_journal(jpath)
    data = fmt.read_bytes(output)
    records: list[Record] = []
    pos, last = header_end, None
    for raw, text, model in fmt.split_rows(data[header_end:], top_k):
        pos += len(raw)
        source = source_to_path(text)
        if classify_path(source) in LIVE_KINDS:
            records.append(Record("L", pos))
            continue
        key = source_key(source)
        if key.identity in old:
            key = SourceKey(key.identity, *old[key.identity], -1)
        if last is not None and last.key.identity == key.identity and records[-1] is last:
            last.pos = pos
            continue
        last = Record("D", pos, key, "ok", model)
        records.append(last)
    atomic.write_bytes(jpath, journal_bytes(records))


def compact(output: Path, fmt: ModuleType, top_k: int, records: list[Record], header_end: int) -> int:
    """Replace output and journal together, without the rows of superseded records (rows of
    live sources inside them are kept). Returns the number of rows removed."""
    return _rewrite(output, fmt, top_k, records, header_end, legacy=False)[0]


def _rewrite(output: Path, fmt: ModuleType, top_k: int, records: list[Record], header_end: int,
             legacy: bool) -> tuple[int, int]:
    """:func:`compact`; with ``legacy`` the output has the columns of the release before model
    ids (its header ends at ``header_end``) and every row kept is rewritten with a null model.
    Returns (rows removed, rows kept)."""
    latest = {id(r) for r in _latest(records).values()}
    kept_records: list[Record] = []
    data = fmt.read_bytes(output)
    pieces = [fmt.header_bytes(top_k) if legacy else data[:header_end]]
    prev, new_pos, removed, kept = header_end, len(pieces[0]), 0, 0
    for r in records:
        seg = data[prev:r.pos]
        prev = r.pos
        superseded = r.kind == "D" and id(r) not in latest
        if superseded or legacy:
            rows = fmt.upgrade_rows(seg, top_k) if legacy else fmt.split_rows(seg, top_k)
            keep = [raw for raw, src, _ in rows if not superseded or classify_path(source_to_path(src)) in LIVE_KINDS]
            removed += len(rows) - len(keep)
            kept += len(keep)
            seg = b"".join(keep)
            if superseded:
                if not seg:
                    continue
                r = Record("L", 0)
        new_pos += len(seg)
        pieces.append(seg)
        kept_records.append(Record(r.kind, new_pos, r.key, r.status, r.model))
    new_output = fmt.join(pieces, top_k)
    _replace_pair(output, new_output, journal_bytes(kept_records))
    return removed, kept


def compact_journaled(output: Path, fmt: ModuleType, top_k: int) -> int:
    """:func:`compact` with the records of the output's journal (the end of a run that redid
    inputs); returns the number of rows removed."""
    records, _ = read_records(journal_path(output))
    return compact(output, fmt, top_k, records, fmt.header_size(top_k))


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _replace_pair(output: Path, output_data: bytes, journal_data: bytes) -> None:
    """Output and journal replaced as a pair: both temporaries are written and fsynced, then an
    intent file names them; a kill during the renames is finished by the next run."""
    tmp_out = atomic.temp_sibling(output, TEMP_TAG)
    tmp_journal = atomic.temp_sibling(journal_path(output), TEMP_TAG)
    for tmp, data in ((tmp_out, output_data), (tmp_journal, journal_data)):
        _write_durable(tmp, data)
    intent = _intent_path(output)
    tmp_intent = atomic.temp_sibling(intent, TEMP_TAG)
    _write_durable(tmp_intent, f"{tmp_out.name}\n{tmp_journal.name}\n".encode("utf-8", "surrogateescape"))
    atomic.replace_file(tmp_intent, intent)
    _finish_compaction(output)


def _finish_compaction(output: Path) -> None:
    intent = _intent_path(output)
    try:
        names = intent.read_bytes().decode("utf-8", "surrogateescape").split("\n")[:2]
    except FileNotFoundError:
        return
    for name, target in zip(names, (output, journal_path(output))):
        tmp = output.with_name(name)
        if name and tmp.exists():
            atomic.replace_file(tmp, target)
    intent.unlink()
    atomic.fsync_dir(output.parent)
