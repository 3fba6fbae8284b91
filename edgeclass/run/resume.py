"""``--resume``: skip inputs already in the output CSV, safely after any kill.

Two files: the CSV itself, and a journal ``<output>.journal`` with one line per finished
source: ``size<TAB>mtime_ns<TAB>source``. The CSV row is written before the journal line.
On start the CSV is re-read and rewritten (atomically) keeping only complete rows of sources
that are still valid:

* a torn last row (the kill hit mid-write) is dropped and that input is redone;
* an image whose row exists but whose journal line was lost (kill between the two writes) is
  kept and its journal line restored;
* a video or stream with rows but no journal line was cut short: its rows are dropped and it
  is redone;
* a source whose file changed since (size or mtime differ) is dropped and redone;
* rows with transient statuses (error, timeout, stream_error) are dropped and redone.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from edgeclass.run.csvout import ENCODING, ERRORS, header
from edgeclass.errors import OutputError
from edgeclass.media.inputs import classify_path

RETRY_STATUSES = frozenset({"error", "timeout", "stream_error", "eof"})


def file_key(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of ``path``, or (-1, -1) when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + ".journal")


@dataclass
class ResumeState:
    done: dict[str, tuple[int, int]] = field(default_factory=dict)
    rows_kept: int = 0
    rows_dropped: int = 0
    torn: bool = False

    def is_done(self, source: str) -> bool:
        key = self.done.get(source)
        return key is not None and key == file_key(source)


def _read_rows(output: Path, top_k: int) -> tuple[list[list[str]], bool]:
    raw = output.read_bytes()
    text = raw.decode(ENCODING, ERRORS)
    torn = bool(text) and not text.endswith("\n")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error:
        rows, torn = _read_rows_lenient(text), True
    if not rows:
        return [], torn
    if rows[0] != header(top_k):
        raise OutputError(
            f"{output} has other columns than this run would write (top-k {top_k}?): "
            "use the same --top-k, or another --output"
        )
    rows = rows[1:]
    width = len(header(top_k))
    if torn and rows:
        rows.pop()
    bad = [r for r in rows if len(r) != width]
    if bad:
        torn = True
        rows = [r for r in rows if len(r) == width]
    return rows, torn


def _read_rows_lenient(text: str) -> list[list[str]]:
    rows = []
    reader = csv.reader(io.StringIO(text))
    while True:
        try:
            rows.append(next(reader))
        except StopIteration:
            return rows
        except csv.Error:
            return rows


def _read_journal(path: Path) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    if not path.exists():
        return out
    text = path.read_bytes().decode(ENCODING, ERRORS)
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # torn last line
    for line in lines:
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[0].lstrip("-").isdigit() and parts[1].lstrip("-").isdigit():
            out[_unescape(parts[2])] = (int(parts[0]), int(parts[1]))
    return out


def _escape(source: str) -> str:
    return source.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append({"n": "\n", "t": "\t", "\\": "\\"}.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def journal_line(source: str, key: tuple[int, int]) -> str:
    return f"{key[0]}\t{key[1]}\t{_escape(source)}\n"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(text.encode(ENCODING, ERRORS))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def prepare_resume(output: Path, top_k: int) -> ResumeState:
    """Validate and compact an existing output + journal; returns what is already done."""
    state = ResumeState()
    if not output.exists():
        journal_path(output).unlink(missing_ok=True)
        return state
    rows, state.torn = _read_rows(output, top_k)
    journal = _read_journal(journal_path(output))
    keep_sources: dict[str, tuple[int, int]] = {}
    dropped_sources: set[str] = set()
    for row in rows:
        source, status = row[0], row[3]
        if source in dropped_sources or source in keep_sources:
            continue
        kind = classify_path(source)
        current = file_key(source) if kind in ("image", "video") else None
        if kind in ("stream", "camera"):
            continue  # rows kept as history; live sources are read again every run
        if status in RETRY_STATUSES:
            dropped_sources.add(source)  # transient failure: retry
            continue
        if source in journal:
            if journal[source] == current:
                keep_sources[source] = current
            else:
                dropped_sources.add(source)  # the file changed: classify again
        elif kind == "image":
            keep_sources[source] = current  # killed between the row and its journal line
        else:
            dropped_sources.add(source)  # a video cut short
    kept = [r for r in rows if r[0] not in dropped_sources]
    state.rows_kept = len(kept)
    state.rows_dropped = len(rows) - len(kept)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header(top_k))
    writer.writerows(kept)
    _atomic_write(output, buf.getvalue())
    _atomic_write(journal_path(output), "".join(journal_line(s, k) for s, k in keep_sources.items()))
    state.done = keep_sources
    return state
