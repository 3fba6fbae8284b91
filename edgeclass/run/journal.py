"""The resume journal's file format: written and read only in this module.

``<output>.journal`` is append-only text (UTF-8): a first line ``edgeclass-journal 4``, then one
tab-separated record per line:

* ``D <pos> <id> <key> <status> <model> <shared> <rest>``: an input is finished; its rows end at
  output position ``pos`` (and start at the previous record's position).

  - ``id``: 16 hex digits, a 64-bit hash (BLAKE2b) of the input's identity (its absolute,
    normalised path); ``key``: 16 hex digits, a hash of ``id`` with the size and mtime (ns) the
    input had when listed, and its ctime (ns) too for statuses retried on a permission change
    (:data:`CTIME_STATUSES`). A ``--resume`` run compares hashes, never parses paths.
  - ``model``: the id of the model that made its rows (empty: made before model ids), or ``=``:
    the same as the previous ``D`` record's.
  - ``shared`` and ``rest``: the identity, escaped with ``escape_source(controls=True)``, as a
    number of leading characters it shares with the previous ``D`` record's (its folder, when
    that is the same) and the rest (the first record a process writes shares 0).
* ``L <pos>``: rows of live sources (streams, cameras) committed up to ``pos``.
* ``S <pos>``: a checkpoint: output and journal were fsynced with everything up to ``pos``.
* ``F <pos> <state> <listed_at> <model> <dev> <ino> <mtime> <ctime> <inputs> <other> <children> <path>``:
  a folder a ``--resume`` run listed (:class:`FolderRecord`), appended at the end of the run
  after its last checkpoint (``pos``: that checkpoint's). The latest record of a path wins.
  ``state`` ``s``: settled (every input it held when listed at ``listed_at`` ns, by the run's
  ``model``, is done and stays done while unchanged: a later run need not list it while its
  ``dev``, ``ino``, ``mtime`` and ``ctime`` (ns) are the same); ``u``: it must be listed.
  ``inputs``/``other``: how many inputs it held, and of them made by another model; ``children``:
  its child folders' names, escaped, joined by ``/``; ``path``: its identity, escaped.

A ``D`` record is about 70-90 bytes (a 60-character path, 2 records in a folder in a row).
:func:`read_digest` reads what a ``--resume`` run needs (positions, hashes, statuses, models) with
NumPy, in chunks, without decoding a path: about 1 s for a million records (with the done set
built from them).

Older journals are read for the upgrade (each is rewritten once as this version):
``edgeclass-journal 3`` (``D <pos> <size> <mtime_ns> <ctime_ns> <status> <model> <input>``),
``edgeclass-journal 2`` (the release before model ids: without the model field) and edgeclass
0.1's (``size<TAB>mtime_ns<TAB>source`` lines, no first line).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeclass.errors import OutputError
from edgeclass.run.output.appendfile import AppendFile
from edgeclass.run.output.columns import escape_source, source_to_path

MAGIC = "edgeclass-journal 4"
MAGIC_V3 = "edgeclass-journal 3"  # the release before hashed keys: sizes, times and whole paths
MAGIC_V2 = "edgeclass-journal 2"  # the release before model ids: records without a model
VERSIONS = {MAGIC: 4, MAGIC_V3: 3, MAGIC_V2: 2}
CTIME_STATUSES = frozenset({"unreadable"})  # their key holds the ctime: a chmod or chown changes it
SAME_MODEL = "="
_MASK = (1 << 64) - 1
_KEY = struct.Struct("<qqq")
_KEY_CTIME = struct.Struct("<qqqq")


@dataclass(frozen=True)
class SourceKey:
    """What identifies an input across runs, and how it looked when listed."""

    identity: str  # absolute normalised path: './a.jpg', 'a.jpg', 'x/../a.jpg' are one input
    size: int = -1
    mtime_ns: int = -1
    ctime_ns: int = -1


def identity(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def source_key(path: str, ident: str | None = None, st: os.stat_result | None = None) -> SourceKey:
    """The key of ``path`` now ((-1, -1, -1) when it cannot be stat'ed); ``ident`` and ``st``:
    its :func:`identity` and ``os.stat`` when known (a folder listing's
    :class:`~edgeclass.media.inputs.Source` has both: no system call)."""
    ident = ident or identity(path)
    if st is None:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return SourceKey(ident)
    return SourceKey(ident, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


file_key = source_key  # the resume tag an executor attaches to an input's work items


def identity_hash(ident: str) -> int:
    """The 64-bit hash (signed) of an identity, as ``D`` records hold it."""
    digest = hashlib.blake2b(ident.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def key_hash(id_hash: int, size: int, mtime_ns: int, ctime_ns: int | None = None) -> int:
    """The 64-bit hash (signed) of an input's identity hash and how it looked; ``ctime_ns`` for
    :data:`CTIME_STATUSES` only."""
    if ctime_ns is None:
        data = _KEY.pack(id_hash, size, mtime_ns)
    else:
        data = _KEY_CTIME.pack(id_hash, size, mtime_ns, ctime_ns)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + ".journal")


@dataclass(frozen=True)
class FolderRecord:
    """What a ``--resume`` run learnt of a folder it listed (an ``F`` record)."""

    path: str  # its identity: absolute, normalised, as the listing reached it
    settled: bool  # every input in it done (and staying done while it is unchanged)
    listed_at: int  # time.time_ns() when the pass that listed it began
    model: str  # the run's model (columns.model_text)
    dev: int
    ino: int
    mtime_ns: int
    ctime_ns: int
    inputs: int  # inputs it held (a run that need not list it counts them as skipped)
    other: int  # of them, rows by another model
    children: tuple[str, ...] = ()  # its child folders' names


@dataclass
class Record:
    kind: str  # "D", "L", "S" or "F"
    pos: int
    key: SourceKey | None = None
    status: str = ""
    model: str = ""  # the rows' model (columns.model_text of its id); "" made before model ids
    hashes: tuple[int, int] | None = field(default=None, compare=False)  # (identity, key) as read
    folder: FolderRecord | None = None  # an F record's

    def id_and_key(self) -> tuple[int, int]:
        """The record's identity and key hashes (made from ``key`` once when not read)."""
        if self.hashes is None:
            k = self.key
            assert k is not None, "a D record has a key"
            idh = identity_hash(k.identity)
            ctime = k.ctime_ns if self.status in CTIME_STATUSES else None
            self.hashes = (idh, key_hash(idh, k.size, k.mtime_ns, ctime))
        return self.hashes


class _Encoder:
    """Record lines in file order: the identity shares its prefix with the previous ``D``
    record's, the model is ``=`` when it is the previous one's."""

    def __init__(self) -> None:
        self.text: str = ""
        self.model: str | None = None

    def line(self, r: Record) -> str:
        if r.kind == "F" and r.folder is not None:
            return folder_line(r.pos, r.folder)
        if r.kind != "D" or r.key is None:
            return f"{r.kind}\t{r.pos}\n"
        text = escape_source(r.key.identity, controls=True)
        folder = text.rfind("/") + 1
        shared = folder if self.text.startswith(text[:folder]) else len(os.path.commonprefix([self.text, text]))
        model = SAME_MODEL if r.model == self.model else r.model
        idh, kh = r.id_and_key()
        self.text, self.model = text, r.model
        return f"D\t{r.pos}\t{idh & _MASK:016x}\t{kh & _MASK:016x}\t{r.status}\t{model}\t{shared}\t{text[shared:]}\n"


def folder_line(pos: int, f: FolderRecord) -> str:
    """An ``F`` record's line."""
    children = "/".join(escape_source(c, controls=True) for c in f.children)
    return (f"F\t{pos}\t{'s' if f.settled else 'u'}\t{f.listed_at}\t{f.model}\t{f.dev}\t{f.ino}\t{f.mtime_ns}\t"
            f"{f.ctime_ns}\t{f.inputs}\t{f.other}\t{children}\t{escape_source(f.path, controls=True)}\n")


def parse_folder(parts: list[str]) -> Record | None:
    """An ``F`` line's fields (split at tabs) as a Record; None: not a well-formed one."""
    if len(parts) != 13 or parts[0] != "F" or parts[2] not in ("s", "u") or not parts[12]:
        return None
    if not (parts[1].isascii() and parts[1].isdigit()):  # as the fast reader reads positions
        return None
    try:
        nums = [int(parts[i]) for i in (1, 3, 5, 6, 7, 8, 9, 10)]
    except ValueError:
        return None
    children = tuple(source_to_path(c) for c in parts[11].split("/")) if parts[11] else ()
    dev, ino, mtime, ctime, inputs, other = nums[2:]
    folder = FolderRecord(source_to_path(parts[12]), parts[2] == "s", nums[1], parts[4], dev, ino, mtime, ctime,
                          inputs, other, children)
    return Record("F", nums[0], folder=folder)


class _Decoder:
    def __init__(self, version: int) -> None:
        self.version, self.text = version, ""
        self.model: str | None = None

    def record(self, line: str) -> Record | None:
        parts = line.split("\t")
        try:
            if parts[0] in ("L", "S") and len(parts) == 2:
                return Record(parts[0], int(parts[1]))
            if parts[0] == "F":
                return parse_folder(parts)
            if parts[0] != "D":
                return None
            if self.version == 4:
                return self._v4(parts)
            if len(parts) == self.version + 5:  # version 2: no model field
                key = SourceKey(source_to_path(parts[-1]), int(parts[2]), int(parts[3]), int(parts[4]))
                return Record("D", int(parts[1]), key, parts[5], parts[6] if self.version == 3 else "")
        except ValueError:
            return None
        return None

    def _v4(self, parts: list[str]) -> Record | None:
        shared = int(parts[6]) if len(parts) == 8 and parts[6].isdigit() else -1
        if shared < 0 or shared > len(self.text) or len(parts[2]) != 16 or len(parts[3]) != 16:
            return None
        model = self.model if parts[5] == SAME_MODEL else parts[5]
        if model is None:  # "the previous record's model" with no previous record
            return None
        text = self.text[:shared] + parts[7]
        hashes = (_signed(int(parts[2], 16)), _signed(int(parts[3], 16)))
        self.text, self.model = text, model
        return Record("D", int(parts[1]), SourceKey(source_to_path(text)), parts[4], model, hashes)


def _signed(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


def parse_record(line: str, version: int = 3) -> Record | None:
    """One line of a journal of ``version`` 3 or 2 (version 4 lines need the lines before them:
    :func:`read_records`)."""
    return _Decoder(version).record(line)


def read_records(path: Path) -> tuple[list[Record], int]:
    """Records of a journal (this version, 3 or 2) and the byte length of its intact part (a
    torn last line is not)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    lines = data.split(b"\n")
    decoder = _Decoder(_version_of(path, lines[0]))
    records, good = [], len(lines[0]) + 1
    for raw in lines[1:-1]:  # the last piece is "" or a torn line
        rec = decoder.record(raw.decode("utf-8", "surrogateescape"))
        if rec is None:
            break
        records.append(rec)
        good += len(raw) + 1
    return records, good


def _version_of(path: Path, first: bytes) -> int:
    version = VERSIONS.get(first.decode("utf-8", "replace"))
    if version is None:
        raise OutputError(f"{path} is not an edgeclass journal (or from another version): move it away "
                          "or write to another --output")
    return version


def journal_version(jpath: Path) -> int | None:
    """4 (this release), 3 (before hashed keys), 2 (before model ids), 1 (edgeclass 0.1, or not
    a journal), None (none)."""
    try:
        with open(jpath, "rb") as fh:
            first = fh.readline().rstrip(b"\n")
    except FileNotFoundError:
        return None
    return VERSIONS.get(first.decode("utf-8", "replace"), 1)


def read_v1_journal(jpath: Path) -> dict[str, tuple[int, int]]:
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


class Journal:
    """Appends records to ``<output>.journal`` (:class:`AppendFile`: a failed write is cut off
    again), one write per record."""

    def __init__(self, path: Path, at: int):
        """``at=0``: a new journal (its first line); ``at=N``: continue after its first N bytes
        (the intact part :func:`read_records` or :func:`read_digest` measured)."""
        self.path = path
        self._encoder = _Encoder()
        self._file = AppendFile(path, at, f"{MAGIC}\n".encode())

    def add(self, record: Record) -> None:
        encoder = _Encoder()
        encoder.text, encoder.model = self._encoder.text, self._encoder.model
        data = encoder.line(record).encode("utf-8", "surrogateescape")
        self._file.write(data)
        self._encoder = encoder  # only once written: a failed write leaves the previous record last

    def sync(self) -> None:
        self._file.sync()

    def close(self) -> None:
        self._file.close()


def journal_bytes(records: list[Record]) -> bytes:
    """A whole journal holding ``records`` (written by compaction, upgrade and adoption)."""
    encoder = _Encoder()
    return (MAGIC + "\n" + "".join(encoder.line(r) for r in records)).encode("utf-8", "surrogateescape")


def intact_size(records: list[Record]) -> int:
    """The byte length of a journal holding exactly ``records``."""
    return len(journal_bytes(records))


def read_records_ends(path: Path) -> tuple[list[Record], list[int]]:
    """:func:`read_records`, with the byte offset where each record's line ends (cutting the
    journal after record ``i`` keeps its first ``ends[i]`` bytes; ``ends[-1]`` is the header's)."""
    records, good = read_records(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(good)
    except FileNotFoundError:
        return [], []
    ends = (np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1).tolist()
    return records, ends[1:len(records) + 1] + ends[:1]


# ---------------------------------------------------------------------------- the fast reader
CHUNK = 2 << 20  # bytes of journal parsed at a time (the memory a read needs beyond its result)
_HEX = np.full(256, 255, np.uint8)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_POW10 = 10 ** np.arange(18, -1, -1, dtype=np.int64)


@dataclass
class Digest:
    """A version-4 journal as a ``--resume`` run needs it, one entry per record in file order
    (``D`` records' fields in the ``D`` arrays), read without decoding a path."""

    kinds: np.ndarray  # uint8: ord("D"), ord("L"), ord("S")
    pos: np.ndarray  # int64
    ends: np.ndarray  # int64: byte offset after each record's line
    ids: np.ndarray  # int64, D records
    keys: np.ndarray  # int64, D records
    status: np.ndarray  # uint8 index into status_names, D records
    model: np.ndarray  # int32 index into model_names, D records
    status_names: list[str]
    model_names: list[str]
    header: int  # bytes of the first line
    folders: list[tuple[int, FolderRecord]] = field(default_factory=list)  # F records: (record index, record)


def read_digest(path: Path) -> Digest:
    """The intact records of a version-4 journal (up to a torn or damaged line, as
    :func:`read_records`), in chunks of :data:`CHUNK` bytes."""
    parts: list[tuple] = []
    names: dict[str, list[str]] = {"status": [], "model": []}
    last_model = [-1]
    folders: list[tuple[int, FolderRecord]] = []
    with open(path, "rb") as fh:
        header = len(fh.readline())
        offset, carry = header, b""
        while True:
            block = fh.read(CHUNK)
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0 and not block:
                break
            if cut:
                piece = _parse_chunk(data[:cut], offset, names, last_model)
                done = sum(len(p[0]) for p in parts)
                folders += [(done + i, f) for i, f in piece[-2]]
                parts.append(piece[:-2] + piece[-1:])
                if piece[-1]:  # a damaged line: the intact part ends here
                    break
            offset, carry = offset + cut, data[cut:]
            if not block:
                break
    types = (np.uint8, np.int64, np.int64, np.int64, np.int64, np.uint8, np.int32)
    columns = [list(p[:-1]) for p in parts]
    a = []
    for j, t in enumerate(types):  # one column at a time, its chunks let go as it is joined
        a.append(np.concatenate([c[j] for c in columns]) if columns else np.zeros(0, t))
        for c in columns:
            c[j] = None
    return Digest(a[0], a[1], a[2], a[3], a[4], a[5], a[6], names["status"], names["model"], header, folders)


def _parse_chunk(data: bytes, offset: int, names: dict[str, list[str]], last_model: list[int]) -> tuple:
    """Whole lines ``data`` (starting at byte ``offset`` of the file) -> the :class:`Digest`
    columns, the F records (index in the chunk, record) and whether a damaged line stopped it."""
    arr = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], nl[:-1] + 1)).astype(np.int64)
    tabs = np.append(np.flatnonzero(arr == 9), len(arr) + 1)
    first = np.searchsorted(tabs, starts)
    kinds = arr[starts] if len(arr) else np.zeros(0, np.uint8)
    is_d, is_f = kinds == ord("D"), kinds == ord("F")
    t = [tabs[np.minimum(first + j, len(tabs) - 1)] for j in range(8)]
    ok = (t[0] == starts + 1) & ((kinds == ord("L")) | (kinds == ord("S")) | is_d | is_f)
    ok &= np.where(is_d, (t[6] < nl) & (t[7] > nl) & (t[2] - t[1] == 17) & (t[3] - t[2] == 17),
                   np.where(is_f, t[1] < nl, t[1] > nl))
    pos_end = np.where(is_d | is_f, t[1], nl)
    pos, pos_ok = _decimal(arr, t[0] + 1, pos_end)
    ok &= pos_ok
    folders = []
    for i in np.flatnonzero(is_f & ok):  # a few: decoded here
        rec = parse_folder(bytes(arr[starts[i]:nl[i]]).decode("utf-8", "surrogateescape").split("\t"))
        if rec is None or rec.folder is None:
            ok[i] = False
            break
        folders.append((int(i), rec.folder))
    d = np.flatnonzero(is_d & ok)
    ids, ids_ok = _hex64(arr, t[1][d] + 1)
    keys, keys_ok = _hex64(arr, t[2][d] + 1)
    bad_d = d[~(ids_ok & keys_ok)]
    ok[bad_d] = False
    n = int(np.argmin(ok)) if not ok.all() else len(ok)
    d = d[d < n]
    m = len(d)
    status = _names(arr, t[3][d] + 1, t[4][d], names["status"])
    model = _models(arr, t[4][d] + 1, t[5][d], names["model"], last_model)
    return (kinds[:n].copy(), pos[:n], (nl[:n] + 1 + offset).astype(np.int64), ids[:m], keys[:m], status, model,
            [(i, f) for i, f in folders if i < n], n < len(ok))


def _decimal(arr: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-negative decimal numbers in ``arr[a:b]`` (at most 19 digits), and which are."""
    width = int(min(max(int((b - a).max()), 1), 19)) if len(a) else 1  # the chunk's longest number
    idx = b[:, None] - width + np.arange(width)
    inside = idx >= a[:, None]
    digits = arr[np.clip(idx, 0, max(len(arr) - 1, 0))].astype(np.int64) - 48
    digits[~inside] = 0
    ok = ((digits >= 0) & (digits <= 9) | ~inside).all(1) & (b > a) & (b - a <= 19)
    return digits @ _POW10[19 - width:], ok


def _hex64(arr: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 16-hex-digit numbers at ``arr[a:a+16]`` as signed 64-bit, and which are valid."""
    vals = _HEX[arr[a[:, None] + np.arange(16)]] if len(a) else np.zeros((0, 16), np.uint8)
    octets = np.ascontiguousarray((vals[:, 0::2] << 4) | vals[:, 1::2])  # two digits a byte, big-endian
    return octets.view(">i8").ravel().astype(np.int64), (vals != 255).all(1)


def _names(arr: np.ndarray, a: np.ndarray, b: np.ndarray, table: list[str]) -> np.ndarray:
    """Short words at ``arr[a:b]`` (statuses) as indices into ``table`` (extended as needed)."""
    lengths = b - a
    code = lengths * 65536 + arr[a].astype(np.int64) * 256 + np.where(lengths > 1, arr[np.minimum(a + 1, b)], 0)
    out = np.zeros(len(a), np.uint8)
    for c in np.unique(code):
        i = int(np.argmax(code == c))
        word = bytes(arr[a[i]:b[i]]).decode("utf-8", "surrogateescape")
        if word not in table:
            table.append(word)
        out[code == c] = table.index(word)
    return out


def _models(arr: np.ndarray, a: np.ndarray, b: np.ndarray, table: list[str], last: list[int]) -> np.ndarray:
    """The model of each ``D`` record (``=``: the previous record's) as indices into ``table``."""
    same = (b - a == 1) & (arr[np.minimum(a, len(arr) - 1)] == ord(SAME_MODEL)) if len(a) else np.zeros(0, bool)
    out = np.full(len(a), -1, np.int32)
    for i in np.flatnonzero(~same):
        text = bytes(arr[a[i]:b[i]]).decode("utf-8", "surrogateescape")
        if text not in table:
            table.append(text)
        out[i] = table.index(text)
    if len(out) and out[0] < 0:
        out[0] = last[0]
    filled = np.maximum.accumulate(np.where(out >= 0, np.arange(len(out)), 0)) if len(out) else out
    out = out[filled]
    if len(out):
        last[0] = int(out[-1])
    return out
