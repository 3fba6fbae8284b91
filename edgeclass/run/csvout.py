"""The CSV format: fixed columns, RFC 4180 quoting, one row per :class:`Result`."""

from __future__ import annotations

import csv
import os
import io
from typing import TextIO

from edgeclass.results import Result

BASE_COLUMNS = ("source", "frame", "timestamp_ms", "status", "error")


def header(top_k: int) -> list[str]:
    cols = list(BASE_COLUMNS)
    for i in range(1, top_k + 1):
        cols += [f"top{i}_id", f"top{i}_label", f"top{i}_score"]
    return cols


def _fmt_ts(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f}" if value != int(value) else str(int(value))


def row_values(result: Result, top_k: int) -> list[str]:
    values = [
        result.source,
        "" if result.frame is None else str(result.frame),
        _fmt_ts(result.timestamp_ms),
        result.status.value,
        result.error,
    ]
    preds = list(result.predictions[:top_k])
    for p in preds:
        values += [str(p.class_id), p.label, f"{p.score:.6f}"]
    values += [""] * (3 * (top_k - len(preds)))
    return values


class CsvSink:
    """Writes rows to a text stream and flushes each one, so a kill loses at most a torn line."""

    def __init__(self, stream: TextIO, top_k: int, write_header: bool = True):
        self._stream = stream
        self._top_k = top_k
        self._writer = csv.writer(stream, lineterminator="\n")
        if write_header:
            self._writer.writerow(header(top_k))
            stream.flush()

    def write(self, result: Result) -> None:
        self._writer.writerow(row_values(result, self._top_k))
        self._stream.flush()


def format_row(result: Result, top_k: int) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row_values(result, top_k))
    return buf.getvalue()


ENCODING = "utf-8"
ERRORS = "surrogateescape"  # non-UTF-8 file names are written as their original bytes


class RowFile:
    """Appends CSV rows to a file with unbuffered ``os.write`` calls.

    After every row the file ends on a row boundary; if a write fails (disk full, file-size
    limit) the partial row is cut off again, so the rows already written stay intact.
    """

    def __init__(self, path, top_k: int, append: bool = False):
        self.path = path
        self.top_k = top_k
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        self._fd = os.open(path, flags, 0o644)
        self._good = os.lseek(self._fd, 0, os.SEEK_END)
        if self._good == 0:
            self._write(",".join(header(top_k)) + "\n")

    def _write(self, text: str) -> None:
        data = text.encode(ENCODING, ERRORS)
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError:
            try:
                os.ftruncate(self._fd, self._good)
            except OSError:
                pass
            raise
        self._good += len(data)

    def write(self, result: Result) -> None:
        self._write(format_row(result, self.top_k))

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
