"""JSON lines: one JSON object per row, keys in column order, no header; null for not applicable.

For log shippers and ``jq``; the same columns and types as CSV and Parquet.
"""

from __future__ import annotations

import json

from edgeclass.run.output.columns import MODEL, header

NAME, EXTENSIONS = "jsonl", (".jsonl", ".ndjson")


def encode_header(top_k: int) -> bytes:
    return b""


encode_legacy_header = encode_header  # the release before model ids: no header either


def encode_row(values: list, top_k: int) -> bytes:
    return (json.dumps(dict(zip(header(top_k), values)), ensure_ascii=False) + "\n").encode("utf-8")


def _objects(data: bytes):
    """(line, object) of the complete lines in ``data``; stops at a torn or foreign one."""
    for line in data.split(b"\n")[:-1]:
        try:
            obj = json.loads(line)
            obj["source"]
        except (ValueError, KeyError, TypeError):
            return
        yield line, obj


def split_rows(data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
    """Complete rows in ``data`` as (raw bytes, source, model); a torn last line is left out."""
    return [(line + b"\n", obj["source"], obj.get("model") or "") for line, obj in _objects(data)]


def upgrade_rows(data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
    """Complete rows of the release before model ids (no ``model`` key), as rows of this one
    with a null ``model``: (raw bytes, source, "")."""
    out = []
    for _, obj in _objects(data):
        items = list(obj.items())
        items.insert(MODEL, ("model", None))
        out.append(((json.dumps(dict(items), ensure_ascii=False) + "\n").encode("utf-8"), obj["source"], ""))
    return out
