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

What is done is held as a :class:`DoneSet` (sorted hashes from the journal's records, 17 bytes
an input: a run over a million done inputs costs its listing, not its output's history), looked
up once per listed input (:meth:`ResumeState.entry`), with the identity and ``stat`` the folder
listing took. The journal's folder records (the latest of each folder: ``folder_records``) let a
run skip folders unchanged since a run settled them (:mod:`edgeclass.run.folders`). A journal of the release before hashed keys (``edgeclass-journal 3``) is
rewritten once as this version (a temporary renamed over it: a kill leaves the old one).

Outputs of the release before model ids (no ``model`` column, journal ``edgeclass-journal 2``)
are upgraded once, when a ``--resume`` run opens them: every committed row gets an empty
``model`` (null: "made before model ids", another model for ``--redo-other-models``), and output
and journal are replaced together as in a compaction (a kill leaves the old pair, or the new
pair finished by the next run). Such an output without a journal is rewritten alone (atomic
replace), then adopted (:func:`adopt`). No committed row is dropped.
"""

from __future__ import annotations

import array
import bisect
import contextlib
import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from edgeclass import atomic
from edgeclass.media.inputs import classify_path
from edgeclass.run.folders import Folders
from edgeclass.run.journal import (
    CTIME_STATUSES,
    Digest,
    FolderRecord,
    Journal,
    Record,
    SourceKey,
    identity,
    identity_hash,
    journal_bytes,
    journal_path,
    journal_version,
    key_hash,
    read_digest,
    read_records,
    read_v1_journal,
    source_key,
)
from edgeclass.run.output.columns import source_to_path

if TYPE_CHECKING:
    from edgeclass.run.output.bytefile import Existing, LineFormat  # the csv/jsonl format objects

TEMP_TAG = "compact"  # temporaries of compaction and upgrade (a kill's leftovers are removed)
_blake2b, _bisect_left, _from_bytes = hashlib.blake2b, bisect.bisect_left, int.from_bytes
BUCKET_BITS = 16  # the done set's directory: at most 2**16 buckets (512 KB, from a million inputs on)
RETRY_ALWAYS = frozenset({"error"})  # unexpected failures: redone on every run
RETRY_ON_CHMOD = CTIME_STATUSES  # redone when permissions (ctime) change
LIVE_KINDS = ("stream", "camera")


def _intent_path(output: Path) -> Path:
    return output.with_name(output.name + ".compacting")


class Entry(NamedTuple):
    """What an output holds of one input: its latest row's status, whether its rows came from
    another model, and whether it is done (this run skips it)."""

    done: bool
    status: str
    other_model: bool


class DoneSet:
    """The latest record of every finished input, held compactly: identity hashes sorted (8
    bytes), their key hashes (8) and a status code (1: the status, and whether another model made
    the rows). ``identity in done``: does the output hold rows of that input?"""

    def __init__(self, ids: np.ndarray, keys: np.ndarray, codes: np.ndarray, statuses: list[str]):
        # Python arrays, not NumPy's: bisect and indexing hold the GIL (searchsorted would hand it
        # to the listing's thread at every call) and cost less per single lookup
        self.ids, self.keys = array.array("q"), array.array("q")
        self.ids.frombytes(np.ascontiguousarray(ids, np.int64).data.cast("B"))  # no intermediate bytes
        self.keys.frombytes(np.ascontiguousarray(keys, np.int64).data.cast("B"))
        self.codes, self.statuses = bytes(np.ascontiguousarray(codes, np.uint8).data), statuses
        self._entries: dict[tuple[bool, int], Entry] = {}
        # where each run of ids sharing their top BUCKET_BITS starts: a lookup bisects ~16 ids in a
        # cache line or two instead of 20 probes across megabytes (a cache miss each)
        bits = max(1, min(BUCKET_BITS, (len(ids) // 16).bit_length()))  # ~16 ids a bucket, <= 1 byte an id
        self._shift, self._half = 64 - bits, 1 << (bits - 1)
        tops = (np.asarray(ids, np.int64) >> self._shift) + self._half
        self.buckets = array.array("q")
        self.buckets.frombytes(np.searchsorted(tops, np.arange((1 << bits) + 1)).astype(np.int64).data.cast("B"))

    @classmethod
    def empty(cls) -> DoneSet:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8), [])

    def __len__(self) -> int:
        return len(self.ids)

    def nbytes(self) -> int:
        return (self.ids.itemsize + self.keys.itemsize + 1) * len(self.ids) + self.buckets.itemsize * len(self.buckets)

    def _index(self, id_hash: int) -> int:
        top = (id_hash >> self._shift) + self._half
        i = bisect.bisect_left(self.ids, id_hash, self.buckets[top], self.buckets[top + 1])
        return i if i < len(self.ids) and self.ids[i] == id_hash else -1

    def __contains__(self, ident: str) -> bool:
        return len(self.ids) > 0 and self._index(identity_hash(ident)) >= 0

    def lookup(self, ident: str, path: str, st: os.stat_result | None, redo_other_models: bool) -> Entry | None:
        """The entry of the input ``ident`` (None: not in the output); ``st``: its stat as listed
        (None: stat'ed here, once). Runs once per listed input: kept to two hashes and a bisect."""
        ids = self.ids
        if not ids:
            return None
        id_hash = _from_bytes(_blake2b(ident.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "little",
                              signed=True)  # identity_hash, inlined: this runs once per listed file
        top = (id_hash >> self._shift) + self._half
        i = _bisect_left(ids, id_hash, self.buckets[top], self.buckets[top + 1])
        if i == len(ids) or ids[i] != id_hash:
            return None
        code = self.codes[i]
        status, other = self.statuses[code & 0x7F], code >= 0x80
        done = status not in RETRY_ALWAYS and not (redo_other_models and other)
        if done:
            if st is None:
                try:
                    st = os.stat(path)
                except (OSError, ValueError):
                    st = None
            size, mtime, ctime = (st.st_size, st.st_mtime_ns, st.st_ctime_ns) if st is not None else (-1, -1, -1)
            done = key_hash(id_hash, size, mtime, ctime if status in RETRY_ON_CHMOD else None) == self.keys[i]
        entry = self._entries.get((done, code))
        if entry is None:
            entry = self._entries[(done, code)] = Entry(done, status, other)
        return entry


@dataclass
class ResumeState:
    """What an output already holds: the latest record of every finished input."""

    done: DoneSet = field(default_factory=DoneSet.empty)
    position: int = 0  # where appending continues
    header_end: int = 0
    cut_bytes: int = 0  # torn or uncommitted output cut off at the start
    superseded: int = 0  # rows removed because their inputs were redone (start-of-run compaction)
    upgraded: int = 0  # rows of the release before model ids given a model column (once)
    model: str = ""  # this run's model (columns.model_text of its id)
    redo_other_models: bool = False  # inputs whose rows came from another model are redone
    folder_records: dict[str, FolderRecord] = field(default_factory=dict)  # the latest F record of each folder
    folders: Folders | None = None  # this run's folder memory (the runner makes it; the ledger writes its records)

    def entry(self, source) -> Entry | None:
        """One lookup for ``source``: a :class:`~edgeclass.media.inputs.Source` (the identity and
        stat its listing took are used) or a path. None: not in the output. An ``ok``, permanent
        failure (``corrupt``, ``empty``...) or ``missing`` row is done while the file is the same
        (size, mtime); ``unreadable`` while its ctime is too; ``error`` never; with
        ``redo_other_models`` rows of another model are not done."""
        if isinstance(source, str):
            return self.done.lookup(identity(source), source, None, self.redo_other_models)
        return self.done.lookup(source.identity or identity(source.path), source.path, source.stat,
                                self.redo_other_models)

    def is_done(self, source) -> bool:
        entry = self.entry(source)
        return entry is not None and entry.done

    def status(self, source) -> str | None:
        """The status of ``source``'s latest row (None: not in the output)."""
        entry = self.entry(source)
        return entry.status if entry is not None else None

    def other_model(self, source) -> bool:
        """Did another model (or a release before model ids) make ``source``'s rows?"""
        entry = self.entry(source)
        return entry is not None and entry.other_model


def done_inputs(output: Path) -> set[str]:
    """The inputs (absolute paths) an output already holds (the reader of the writer protocol)."""
    records, _ = read_records(journal_path(Path(output)))
    return set(_latest(records))


def _latest(records: list[Record]) -> dict[str, Record]:
    return {r.key.identity: r for r in records if r.kind == "D" and r.key is not None}


def _to_check(kinds: np.ndarray, pos: np.ndarray, size: int) -> tuple[int, int]:
    """Which records (their kinds and positions, in file order) to check against the output
    (start, stop): those within the file (a power cut can lose the output's tail but keep the
    journal's), from the last checkpoint on, and always the last one (one read of the tail)."""
    over = np.flatnonzero(pos > size)
    n = int(over[0]) if len(over) else len(pos)
    syncs = np.flatnonzero(kinds[:n] == ord("S"))
    return min(int(syncs[-1]) + 1 if len(syncs) else 0, max(n - 1, 0)), n


def _journal_positions(jpath: Path, version: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The kinds and positions of a journal's records (none for a journal of edgeclass 0.1, or none)."""
    if version not in (2, 3, 4):
        return np.zeros(0, np.uint8), np.zeros(0, np.int64)
    if version == 4:
        digest = read_digest(jpath)
        return digest.kinds, digest.pos
    records, _ = read_records(jpath)
    return np.array([ord(r.kind) for r in records], np.uint8), np.array([r.pos for r in records], np.int64)


def open_resume(output: Path, fmt: LineFormat, top_k: int, model: str = "",
                redo_other_models: bool = False) -> tuple[ResumeState, Journal]:
    """Validate output + journal, cut torn tails in place, finish an interrupted compaction,
    upgrade an output of the release before model ids. ``model``: this run's
    :func:`~edgeclass.run.output.columns.model_text`."""
    jpath = journal_path(output)
    _finish_compaction(output)
    _remove_temps(output)
    state = ResumeState(header_end=fmt.header_size(top_k), model=model, redo_other_models=redo_other_models)
    size = fmt.data_size(output) if output.exists() else 0
    version = journal_version(jpath)
    kinds, pos = _journal_positions(jpath, version)
    start, stop = _to_check(kinds, pos, size)
    seen = fmt.inspect(output, top_k, pos[start:stop].tolist())  # the one look; other columns: OutputError
    if not seen.has_rows:  # no row: start afresh
        return state, Journal(jpath, 0)
    n = seen.valid(start)
    if seen.legacy or version == 2:
        upgraded = _upgrade(output, fmt, top_k, seen, version, n)
        state, journal = open_resume(output, fmt, top_k, model, redo_other_models)
        state.upgraded = upgraded
        return state, journal
    if version == 3:
        _upgrade_journal(journal_path(output))
    elif version != 4:
        adopt(output, fmt, top_k, state.header_end)
    digest = read_digest(jpath)
    if version not in (3, 4):
        n = len(digest.pos)  # adopted: every record ends a complete row
    state.position = int(digest.pos[n - 1]) if n else state.header_end
    jgood = int(digest.ends[n - 1]) if n else digest.header
    n_done = int(np.count_nonzero(digest.kinds[:n] == ord("D")))
    folder_records = {f.path: f for i, f in digest.folders if i < n}  # the latest wins
    digest.kinds = digest.pos = digest.ends = np.zeros(0, np.int64)  # let go before the done set is made
    done = _done_set(digest, n_done, model)
    if done is None:  # a redone input's old rows survived a kill
        records, _ = read_records(jpath)
        removed = compact(output, fmt, top_k, records[:n], state.header_end)
        state, journal = open_resume(output, fmt, top_k, model, redo_other_models)
        state.superseded = removed
        return state, journal
    state.done, state.folder_records = done, folder_records
    state.cut_bytes = size - state.position
    return state, Journal(jpath, jgood)


def _done_set(digest: Digest, n_done: int, model: str) -> DoneSet | None:
    """The first ``n_done`` ``D`` records of ``digest`` as a :class:`DoneSet` (``model``: this
    run's); None when an input has two records (its old rows are still to be removed)."""
    order = np.argsort(digest.ids[:n_done], kind="stable")
    ids = digest.ids[order]
    digest.ids = ids
    if len(ids) > 1 and bool((ids[1:] == ids[:-1]).any()):
        return None
    other = np.array([name != model for name in digest.model_names] + [True], bool)  # index -1: unknown
    codes = (digest.status[:n_done] | (other[digest.model[:n_done]].astype(np.uint8) << 7))[order]
    digest.status = digest.model = np.zeros(0, np.uint8)
    return DoneSet(ids, digest.keys[order], codes, list(digest.status_names))


def _upgrade_journal(jpath: Path) -> None:
    """Rewrite a journal of the release before hashed keys (version 3) as this version, once:
    the same records, replaced atomically (a kill leaves the old journal, upgraded next time)."""
    records, _ = read_records(jpath)
    tmp = atomic.temp_sibling(jpath, TEMP_TAG)
    _write_durable(tmp, journal_bytes(records))
    atomic.replace_file(tmp, jpath)


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


def _upgrade(output: Path, fmt: LineFormat, top_k: int, seen: Existing, version: int | None, n: int) -> int:
    """Give an output of the release before model ids this release's layout; returns its rows.
    With its journal (version 2): output and journal replaced together, every committed row kept
    (null model), superseded rows removed, uncommitted ones cut (as any resume would). Without:
    the output alone, every complete row kept, then :func:`adopt` builds the journal."""
    if version == 2:
        records, _ = read_records(journal_path(output))
        return _rewrite(output, fmt, top_k, records[:n], seen.header_end, seen.legacy)[1]
    data = fmt.read_bytes(output)
    rows = fmt.upgrade_rows(data[fmt.legacy_header_size(top_k):], top_k)
    tmp = atomic.temp_sibling(output, TEMP_TAG)
    _write_durable(tmp, fmt.header_bytes(top_k) + b"".join(raw for raw, _, _ in rows))
    atomic.replace_file(tmp, output)
    adopt(output, fmt, top_k, fmt.header_size(top_k))
    return len(rows)


def adopt(output: Path, fmt: LineFormat, top_k: int, header_end: int) -> None:
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
        if last is not None and last.key is not None and last.key.identity == key.identity and records[-1] is last:
            last.pos = pos
            continue
        last = Record("D", pos, key, "ok", model)
        records.append(last)
    atomic.write_bytes(jpath, journal_bytes(records))


def compact(output: Path, fmt: LineFormat, top_k: int, records: list[Record], header_end: int) -> int:
    """Replace output and journal together, without the rows of superseded records (rows of
    live sources inside them are kept). Returns the number of rows removed."""
    return _rewrite(output, fmt, top_k, records, header_end, legacy=False)[0]


def _rewrite(output: Path, fmt: LineFormat, top_k: int, records: list[Record], header_end: int,
             legacy: bool) -> tuple[int, int]:
    """:func:`compact`; with ``legacy`` the output has the columns of the release before model
    ids (its header ends at ``header_end``) and every row kept is rewritten with a null model.
    Returns (rows removed, rows kept)."""
    latest = {id(r) for r in _latest(records).values()}
    latest |= {id(r) for r in {r.folder.path: r for r in records if r.kind == "F" and r.folder}.values()}
    kept_records: list[Record] = []
    data = fmt.read_bytes(output)
    pieces = [fmt.header_bytes(top_k) if legacy else data[:header_end]]
    prev, new_pos, removed, kept = header_end, len(pieces[0]), 0, 0
    for r in records:
        seg = data[prev:r.pos]
        prev = r.pos
        if r.kind == "F" and id(r) not in latest and not seg:  # a folder's older record: the latest wins
            continue
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
        kept_records.append(dataclasses.replace(r, pos=new_pos))
    new_output = fmt.join(pieces, top_k)
    _replace_pair(output, new_output, journal_bytes(kept_records))
    return removed, kept


def compact_journaled(output: Path, fmt: LineFormat, top_k: int) -> int:
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
