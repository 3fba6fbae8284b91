"""CSV: RFC 4180 quoting, a header line, one line (or quoted multi-line record) per row.

Numbers are written as text (scores with 6 decimals, timestamps with at most one); null is an
empty field. Read back by :meth:`CsvFormat.split_rows` (resume compaction) and by any CSV reader;
the files of the release before model ids (no ``model`` column) by :meth:`CsvFormat.upgrade_rows`.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

from edgeclass.run.output.bytefile import Layout, LineFormat
from edgeclass.run.output.columns import MODEL, Cell, header, legacy_header
from edgeclass.run.output.format import register


def _rows(data: bytes, width: int) -> Iterator[list[str]]:
    """Complete CSV records of ``width`` fields in ``data``; stops at a torn or foreign one."""
    import csv

    try:
        for row in csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline="")):
            if len(row) != width:
                return
            yield row
    except csv.Error:
        return


_LINE = threading.local()  # a CSV writer and its buffer per thread, reused row after row


def _encode(row: list[str]) -> bytes:
    """One CSV record (our own rows round-trip exactly through :func:`_rows` and back)."""
    line = getattr(_LINE, "state", None)
    if line is None:
        import csv

        buf = io.StringIO()
        line = _LINE.state = (buf, csv.writer(buf, lineterminator="\n"))
    buf, writer = line
    buf.seek(0)
    buf.truncate()
    writer.writerow(row)
    return buf.getvalue().encode("utf-8")


class CsvFormat(LineFormat):
    name = "csv"
    extensions: tuple[str, ...] = (".csv",)

    def encode_header(self, top_k: int) -> bytes:
        return (",".join(header(top_k)) + "\n").encode("utf-8")

    def encode_legacy_header(self, top_k: int) -> bytes:
        return (",".join(legacy_header(top_k)) + "\n").encode("utf-8")

    def encode_row(self, values: list[Cell], top_k: int) -> bytes:
        texts = []
        for i, v in enumerate(values):
            if v is None:
                texts.append("")
            elif i == 2:  # timestamp_ms
                texts.append(f"{v:.1f}" if v != int(v) else str(int(v)))
            elif isinstance(v, float):
                texts.append(f"{v:.6f}")
            else:
                texts.append(str(v))
        return _encode(texts)

    def split_rows(self, data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
        return [(_encode(row), row[0], row[MODEL]) for row in _rows(data, len(header(top_k)))]

    def upgrade_rows(self, data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
        return [(_encode(row[:MODEL] + [""] + row[MODEL:]), row[0], "")
                for row in _rows(data, len(legacy_header(top_k)))]

    def layout(self, path: Path, top_k: int) -> Layout | None:
        """The header line decides (a torn one is a prefix of this release's)."""
        current, legacy = self.encode_header(top_k), self.encode_legacy_header(top_k)
        with open(path, "rb") as fh:
            first = fh.read(len(current) + 1)
        if first[: len(current)] == current[: len(first)] or legacy.startswith(first):
            return "current"  # this release's header, or a torn header and no row
        if first[: len(legacy)] == legacy:
            return "legacy"
        return None


CSV = register(CsvFormat())
