"""JSON lines: one JSON object per row, keys in column order, no header; null for not applicable.

For log shippers and ``jq``; the same columns and types as CSV and Parquet.
"""

from __future__ import annotations

import json

from edgeclass.run.output.columns import header

NAME, EXTENSIONS = "jsonl", (".jsonl", ".ndjson")


def encode_header(top_k: int) -> bytes:
    return b""


def encode_row(values: list, top_k: int) -> bytes:
    return (json.dumps(dict(zip(header(top_k), values)), ensure_ascii=False) + "\n").encode("utf-8")


def split_rows(data: bytes, top_k: int) -> list[tuple[bytes, str]]:
    """Complete rows in ``data`` as (raw bytes, source); a torn last line is left out."""
    out = []
    for line in data.split(b"\n")[:-1]:
        try:
            out.append((line + b"\n", json.loads(line)["source"]))
        except (ValueError, KeyError, TypeError):
            break
    return out
