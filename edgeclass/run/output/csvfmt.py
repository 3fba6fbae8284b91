"""CSV: RFC 4180 quoting, a header line, one line (or quoted multi-line record) per row.

Numbers are written as text (scores with 6 decimals, timestamps with at most one); null is an
empty field. Read back by :func:`split_rows` (resume compaction) and by any CSV reader.
"""

from __future__ import annotations

import csv
import io

from edgeclass.run.output.columns import header

NAME, EXTENSIONS = "csv", (".csv",)


def encode_header(top_k: int) -> bytes:
    return (",".join(header(top_k)) + "\n").encode("utf-8")


def encode_row(values: list, top_k: int) -> bytes:
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
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(texts)
    return buf.getvalue().encode("utf-8")


def split_rows(data: bytes, top_k: int) -> list[tuple[bytes, str]]:
    """Complete rows in ``data`` (no header) as (raw bytes, source); a torn last row is left out."""
    text = data.decode("utf-8", "replace")
    out: list[tuple[bytes, str]] = []
    width = len(header(top_k))
    try:
        for row in csv.reader(io.StringIO(text, newline="")):
            if len(row) != width:
                break
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(row)  # our own rows round-trip exactly
            out.append((buf.getvalue().encode("utf-8"), row[0]))
    except csv.Error:
        pass
    return out
