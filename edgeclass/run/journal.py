"""The resume journal's file format: written and read only in this module.

``<output>.journal`` is append-only text (UTF-8): a first line ``edgeclass-journal 3``, then one
tab-separated record per line (file names escaped with ``escape_source(controls=True)``):

* ``D <pos> <size> <mtime_ns> <ctime_ns> <status> <model> <input>``: an input is finished; its
  rows end at output position ``pos`` (and start at the previous record's position). The size,
  mtime and ctime are those seen when the input was listed; ``model`` is the id of the model
  that made its rows (empty: made before model ids); ``input`` is its absolute, normalised path.
* ``L <pos>``: rows of live sources (streams, cameras) committed up to ``pos``.
* ``S <pos>``: a checkpoint: output and journal were fsynced with everything up to ``pos``.

Older journals are read for the upgrade: ``edgeclass-journal 2`` (the release before model ids:
``D`` records without the model field) and edgeclass 0.1's (``size<TAB>mtime_ns<TAB>source``
lines, no first line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgeclass.errors import OutputError
from edgeclass.run.output.appendfile import AppendFile
from edgeclass.run.output.columns import escape_source, source_to_path

MAGIC = "edgeclass-journal 3"
MAGIC_V2 = "edgeclass-journal 2"  # the release before model ids: records without a model


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


@dataclass
class Record:
    kind: str  # "D", "L" or "S"
    pos: int
    key: SourceKey | None = None
    status: str = ""
    model: str = ""  # the rows' model (columns.model_text of its id); "" made before model ids

    def line(self) -> str:
        if self.kind != "D":
            return f"{self.kind}\t{self.pos}\n"
        k = self.key
        return (f"D\t{self.pos}\t{k.size}\t{k.mtime_ns}\t{k.ctime_ns}\t{self.status}\t{self.model}\t"
                f"{escape_source(k.identity, controls=True)}\n")


def parse_record(line: str, version: int = 3) -> Record | None:
    parts = line.split("\t")
    try:
        if parts[0] in ("L", "S") and len(parts) == 2:
            return Record(parts[0], int(parts[1]))
        if parts[0] == "D" and len(parts) == version + 5:  # version 2: no model field
            key = SourceKey(source_to_path(parts[-1]), int(parts[2]), int(parts[3]), int(parts[4]))
            return Record("D", int(parts[1]), key, parts[5], parts[6] if version == 3 else "")
    except ValueError:
        return None
    return None


def read_records(path: Path) -> tuple[list[Record], int]:
    """Records of a journal (this version or 2) and the byte length of its intact part (a torn
    last line is not)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    lines = data.split(b"\n")
    version = {MAGIC: 3, MAGIC_V2: 2}.get(lines[0].decode("utf-8", "replace"))
    if version is None:
        raise OutputError(f"{path} is not an edgeclass journal (or from another version): move it away "
                          "or write to another --output")
    records, good = [], len(lines[0]) + 1
    for raw in lines[1:-1]:  # the last piece is "" or a torn line
        rec = parse_record(raw.decode("utf-8", "surrogateescape"), version)
        if rec is None:
            break
        records.append(rec)
        good += len(raw) + 1
    return records, good


def journal_version(jpath: Path) -> int | None:
    """3 (this release), 2 (before model ids), 1 (edgeclass 0.1, or not a journal), None (none)."""
    try:
        with open(jpath, "rb") as fh:
            first = fh.readline().rstrip(b"\n")
    except FileNotFoundError:
        return None
    return {MAGIC.encode(): 3, MAGIC_V2.encode(): 2}.get(first, 1)


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
    """Appends records to ``<output>.journal`` (:class:`AppendFile`: a failed write is cut off again)."""

    def __init__(self, path: Path, at: int):
        """``at=0``: a new journal (its first line); ``at=N``: continue after its first N bytes
        (the intact part :func:`read_records` measured)."""
        self.path = path
        self._file = AppendFile(path, at, f"{MAGIC}\n".encode())

    def add(self, record: Record) -> None:
        self._file.write(record.line().encode("utf-8", "surrogateescape"))

    def sync(self) -> None:
        self._file.sync()

    def close(self) -> None:
        self._file.close()


def journal_bytes(records: list[Record]) -> bytes:
    """A whole journal holding ``records`` (written by compaction, upgrade and adoption)."""
    return (MAGIC + "\n" + "".join(r.line() for r in records)).encode("utf-8", "surrogateescape")


def intact_size(records: list[Record]) -> int:
    """The byte length of a journal holding exactly ``records``."""
    return len(journal_bytes(records))
