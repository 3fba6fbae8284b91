"""``--resume``: the journal beside the output, written and read only in this module.

``<output>.journal`` is append-only text (UTF-8): a first line ``edgeclass-journal 2``, then one
tab-separated record per line (file names escaped with ``escape_source(controls=True)``):

* ``D <pos> <size> <mtime_ns> <ctime_ns> <status> <input>``: an input is finished; its rows end
  at output position ``pos`` (and start at the previous record's position). The size, mtime and
  ctime are those seen when the input was listed; ``input`` is its absolute, normalised path.
* ``L <pos>``: rows of live sources (streams, cameras) committed up to ``pos``.
* ``S <pos>``: a checkpoint: output and journal were fsynced with everything up to ``pos``.

The output row is written first, then its record. Whatever a kill leaves, the next run:

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
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from edgeclass import atomic
from edgeclass.errors import OutputError
from edgeclass.media.inputs import classify_path
from edgeclass.run.output.columns import escape_source, source_to_path

MAGIC = "edgeclass-journal 2"
RETRY_ALWAYS = frozenset({"error"})  # unexpected failures: redone on every run
RETRY_ON_CHMOD = frozenset({"unreadable"})  # redone when permissions (ctime) change
LIVE_KINDS = ("stream", "camera")


@dataclass(frozen=True)
class SourceKey:
    """What identifies an input across runs, and how it looked when listed."""

    identity: str  # absolute normalised path: './a.jpg', 'a.jpg', 'x/../a.jpg' are one input
    size: int = -1
    mtime_ns: int = -1
    ctime_ns: int = -1


def identity(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def source_key(path: str) -> SourceKey:
    """The key of ``path`` now ((-1, -1, -1) when it cannot be stat'ed)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return SourceKey(identity(path))
    return SourceKey(identity(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns)


file_key = source_key  # the resume tag an executor attaches to an input's work items


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + ".journal")


def _intent_path(output: Path) -> Path:
    return output.with_name(output.name + ".compacting")


@dataclass
class Record:
    kind: str  # "D", "L" or "S"
    pos: int
    key: SourceKey | None = None
    status: str = ""

    def line(self) -> str:
        if self.kind != "D":
            return f"{self.kind}\t{self.pos}\n"
        k = self.key
        return (f"D\t{self.pos}\t{k.size}\t{k.mtime_ns}\t{k.ctime_ns}\t{self.status}\t"
                f"{escape_source(k.identity, controls=True)}\n")


def _parse(line: str) -> Record | None:
    parts = line.split("\t")
    try:
        if parts[0] in ("L", "S") and len(parts) == 2:
            return Record(parts[0], int(parts[1]))
        if parts[0] == "D" and len(parts) == 7:
            key = SourceKey(source_to_path(parts[6]), int(parts[2]), int(parts[3]), int(parts[4]))
            return Record("D", int(parts[1]), key, parts[5])
    except ValueError:
        return None
    return None


@dataclass
class ResumeState:
    """What an output already holds: the latest record of every finished input."""

    done: dict[str, Record] = field(default_factory=dict)
    position: int = 0  # where appending continues
    header_end: int = 0
    cut_bytes: int = 0  # torn or uncommitted output cut off at the start
    superseded: int = 0  # rows removed because their inputs were redone (start-of-run compaction)

    def is_done(self, source: str) -> bool:
        rec = self.done.get(identity(source))
        if rec is None or rec.status in RETRY_ALWAYS:
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


def done_inputs(output: Path) -> set[str]:
    """The inputs (absolute paths) an output already holds (the reader of the writer protocol)."""
    records, _ = _read_records(journal_path(Path(output)))
    return {r.key.identity for r in _latest(records).values()}


def _read_records(path: Path) -> tuple[list[Record], int]:
    """Records of a journal and the byte length of its intact part (a torn last line is not)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    lines = data.split(b"\n")
    if not lines or lines[0].decode("utf-8", "replace") != MAGIC:
        raise OutputError(f"{path} is not an edgeclass journal (or from another version): move it away "
                          "or write to another --output")
    records, good = [], len(lines[0]) + 1
    for raw in lines[1:-1]:  # the last piece is "" or a torn line
        rec = _parse(raw.decode("utf-8", "surrogateescape"))
        if rec is None:
            break
        records.append(rec)
        good += len(raw) + 1
    return records, good


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


class Journal:
    """Appends records with unbuffered writes; a failed write is cut off again."""

    def __init__(self, path: Path, at: int):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        if at == 0:
            os.ftruncate(self._fd, 0)
            at = len(self._write_at(0, f"{MAGIC}\n"))
        elif os.fstat(self._fd).st_size != at:
            os.ftruncate(self._fd, at)  # a torn or invalid tail, cut in place
        self._good = at

    def _write_at(self, at: int, text: str) -> bytes:
        data = text.encode("utf-8", "surrogateescape")
        try:
            view, off = memoryview(data), at
            while view:
                n = os.pwrite(self._fd, view, off)
                view, off = view[n:], off + n
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, at)
            raise
        return data

    def add(self, record: Record) -> None:
        self._good += len(self._write_at(self._good, record.line()))

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def open_resume(output: Path, fmt: ModuleType, top_k: int) -> tuple[ResumeState, Journal]:
    """Validate output + journal, cut torn tails in place, finish an interrupted compaction."""
    jpath = journal_path(output)
    _finish_compaction(output)
    state = ResumeState(header_end=fmt.header_size(top_k))
    size = fmt.data_size(output) if output.exists() else 0
    if size:
        fmt.check_header(output, top_k)
    if size <= state.header_end:  # nothing (or only a header, maybe torn): start afresh
        return state, Journal(jpath, 0)
    if _needs_adoption(jpath):
        adopt(output, fmt, top_k, state.header_end)
    records, jgood = _read_records(jpath)
    n = _valid_prefix(records, fmt, output, size)
    if n < len(records):
        jgood = len(MAGIC) + 1 + sum(len(r.line().encode("utf-8", "surrogateescape")) for r in records[:n])
        records = records[:n]
    latest = _latest(records)
    if len(latest) < sum(r.kind == "D" for r in records):  # a redone input's old rows survived a kill
        removed = compact(output, fmt, top_k, records, state.header_end)
        state, journal = open_resume(output, fmt, top_k)
        state.superseded = removed
        return state, journal
    state.done = latest
    state.position = records[-1].pos if records else state.header_end
    state.cut_bytes = size - state.position
    return state, Journal(jpath, jgood)


def _needs_adoption(jpath: Path) -> bool:
    try:
        with open(jpath, "rb") as fh:
            return fh.readline().rstrip(b"\n") != MAGIC.encode()
    except FileNotFoundError:
        return True


def _read_v1_journal(jpath: Path) -> dict[str, tuple[int, int]]:
    """Journals of edgeclass 0.1 (``size<TAB>mtime_ns<TAB>source`` lines), for the upgrade."""
    out: dict[str, tuple[int, int]] = {}
    try:
        lines = jpath.read_bytes().decode("utf-8", "surrogateescape").split("\n")[:-1]
    except FileNotFoundError:
        return out
    for line in lines:
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[0].lstrip("-").isdigit() and parts[1].lstrip("-").isdigit():
            out[identity(source_to_path(parts[2]))] = (int(parts[0]), int(parts[1]))
    return out


def adopt(output: Path, fmt: ModuleType, top_k: int, header_end: int) -> None:
    """Build a journal for an output written without one (a run without --resume, or an
    edgeclass 0.1 journal): every complete row is kept, consecutive rows of one source form one
    record keyed by the old journal's size and mtime, or the file's as it is now. Once, O(rows)."""
    jpath = journal_path(output)
    old = _read_v1_journal(jpath)
    data = fmt.read_bytes(output)
    records: list[Record] = []
    pos, last = header_end, None
    for raw, text in fmt.split_rows(data[header_end:], top_k):
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
        last = Record("D", pos, key, "ok")
        records.append(last)
    text = MAGIC + "\n" + "".join(r.line() for r in records)
    atomic.write_bytes(jpath, text.encode("utf-8", "surrogateescape"))


def compact(output: Path, fmt: ModuleType, top_k: int, records: list[Record], header_end: int) -> int:
    """Replace output and journal together, without the rows of superseded records (rows of
    live sources inside them are kept). Returns the number of rows removed."""
    latest = {id(r) for r in _latest(records).values()}
    kept_records: list[Record] = []
    pieces: list[bytes] = []
    data = fmt.read_bytes(output)
    prev, new_pos, removed = header_end, header_end, 0
    pieces.append(data[:header_end])
    for r in records:
        seg = data[prev:r.pos]
        prev = r.pos
        if r.kind == "D" and id(r) not in latest:
            rows = fmt.split_rows(seg, top_k)
            keep = [raw for raw, src in rows if classify_path(source_to_path(src)) in LIVE_KINDS]
            removed += len(rows) - len(keep)
            seg = b"".join(keep)
            if not seg:
                continue
            r = Record("L", 0)
        new_pos += len(seg)
        pieces.append(seg)
        kept_records.append(Record(r.kind, new_pos, r.key, r.status))
    new_output = fmt.join(pieces, top_k)
    journal_text = MAGIC + "\n" + "".join(r.line() for r in kept_records)
    _replace_pair(output, new_output, journal_text.encode("utf-8", "surrogateescape"))
    return removed


def _replace_pair(output: Path, output_data: bytes, journal_data: bytes) -> None:
    """Output and journal replaced as a pair: both temporaries are written and fsynced, then an
    intent file names them; a kill during the renames is finished by the next run."""
    tmp_out = atomic.temp_sibling(output, "compact")
    tmp_journal = atomic.temp_sibling(journal_path(output), "compact")
    for tmp, data in ((tmp_out, output_data), (tmp_journal, journal_data)):
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    atomic.write_text(_intent_path(output), f"{tmp_out.name}\n{tmp_journal.name}\n")
    _finish_compaction(output)


def _finish_compaction(output: Path) -> None:
    intent = _intent_path(output)
    try:
        names = intent.read_text(encoding="utf-8").split("\n")[:2]
    except FileNotFoundError:
        return
    for name, target in zip(names, (output, journal_path(output))):
        tmp = output.with_name(name)
        if name and tmp.exists():
            atomic.replace_file(tmp, target)
    intent.unlink()
    atomic.fsync_dir(output.parent)
