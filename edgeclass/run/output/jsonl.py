"""JSON lines: one JSON object per row, keys in column order, no header; null for not applicable.

For log shippers and ``jq``; the same columns and types as CSV and Parquet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeclass.run.output.bytefile import Layout, LineFormat
from edgeclass.run.output.columns import MODEL, Cell, header, legacy_header
from edgeclass.run.output.format import register


def _objects(data: bytes) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """(line, object) of the complete lines in ``data``; stops at a torn or foreign one."""
    for line in data.split(b"\n")[:-1]:
        try:
            obj = json.loads(line)
            obj["source"]
        except (ValueError, KeyError, TypeError):
            return
        yield line, obj


def _keys(line: bytes) -> list[str]:
    try:
        return list(json.loads(line))
    except ValueError:
        return []


class JsonLinesFormat(LineFormat):
    name = "jsonl"
    extensions: tuple[str, ...] = (".jsonl", ".ndjson")

    def encode_header(self, top_k: int) -> bytes:
        return b""

    def encode_legacy_header(self, top_k: int) -> bytes:
        return b""  # the release before model ids: no header either

    def encode_row(self, values: list[Cell], top_k: int) -> bytes:
        return (json.dumps(dict(zip(header(top_k), values)), ensure_ascii=False) + "\n").encode("utf-8")

    def split_rows(self, data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
        return [(line + b"\n", obj["source"], obj.get("model") or "") for line, obj in _objects(data)]

    def upgrade_rows(self, data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
        out = []
        for _, obj in _objects(data):
            items = list(obj.items())
            items.insert(MODEL, ("model", None))
            out.append(((json.dumps(dict(items), ensure_ascii=False) + "\n").encode("utf-8"), obj["source"], ""))
        return out

    def layout(self, path: Path, top_k: int) -> Layout | None:
        """The keys of the first row decide (a torn first row: this release's)."""
        with open(path, "rb") as fh:
            first = fh.readline(1 << 24)
        if not first.endswith(b"\n") or _keys(first) == header(top_k):
            return "current"
        if _keys(first) == legacy_header(top_k):
            return "legacy"
        return None


JSONL = register(JsonLinesFormat())
