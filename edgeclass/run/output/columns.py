"""The result columns, their types and the one text form of a file name, shared by every format.

Columns: ``source, frame, timestamp_ms, status, error, model, top1_id, top1_label, top1_score, ...``.
Types: ``source``, ``status``, ``error``, ``model`` strings (``error`` is "" on ok rows);
``frame`` and ``topN_id`` 64-bit integers, ``timestamp_ms`` and ``topN_score`` 64-bit floats,
``topN_label`` strings; null (an empty CSV field) when not applicable.

``model`` is the id of the model that made the row (``ModelDir.model_id``:
``<folder>@<12 hex of sha256 over the IR pair>``), on every row a run writes, failure rows
included. Null (empty in CSV) on rows written before model ids existed: releases before it
wrote the same columns without ``model`` (:func:`legacy_header`); ``--resume`` upgrades such
an output once (:mod:`edgeclass.run.resume`).

``source`` is always valid UTF-8. File names are bytes on Linux: a name that is not valid UTF-8
is written with each undecodable byte as ``\\xNN``, and a backslash as ``\\\\``, so the text is
reversible: :func:`source_to_path` gives back the exact name (``os.fsencode`` of it gives the
original bytes). Names without backslashes or undecodable bytes are written unchanged.
"""

from __future__ import annotations

import re

from edgeclass.results import Result

BASE_COLUMNS = ("source", "frame", "timestamp_ms", "status", "error", "model")
MODEL = BASE_COLUMNS.index("model")  # where rows of the release before model ids get a null model
Cell = str | int | float | None  # one value of a row (None: null), as row_values gives it to a format
INT, FLOAT, STR = "int64", "float64", "string"
BASE_TYPES = {"source": STR, "frame": INT, "timestamp_ms": FLOAT, "status": STR, "error": STR, "model": STR}


def header(top_k: int) -> list[str]:
    cols = list(BASE_COLUMNS)
    for i in range(1, top_k + 1):
        cols += [f"top{i}_id", f"top{i}_label", f"top{i}_score"]
    return cols


def legacy_header(top_k: int) -> list[str]:
    """The columns of the releases before model ids: :func:`header` without ``model``."""
    cols = header(top_k)
    del cols[MODEL]
    return cols


def model_text(model_id: str) -> str:
    """A model id as the ``model`` column and the resume journal write it (one line of UTF-8)."""
    return escape_source(model_id, controls=True)


def column_types(top_k: int) -> dict[str, str]:
    types = dict(BASE_TYPES)
    for i in range(1, top_k + 1):
        types.update({f"top{i}_id": INT, f"top{i}_label": STR, f"top{i}_score": FLOAT})
    return types


_SURROGATE = re.compile("[\udc80-\udcff]")
_ESCAPE = re.compile(r"[\\\udc80-\udcff\t\n\r]")
_ESCAPES_OUT = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[\\tnr])")
_ESCAPES_IN = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def escape_source(path: str, controls: bool = False) -> str:
    """``path`` (a str from ``os.fsdecode``: undecodable bytes are lone surrogates) as UTF-8-safe
    text. ``controls`` also escapes tab, newline and carriage return (line-based files)."""

    def one(m: re.Match[str]) -> str:
        c = m.group()
        if c in "\t\n\r" and not controls:
            return c
        return _ESCAPES_OUT.get(c) or f"\\x{ord(c) - 0xDC00:02x}"

    return _ESCAPE.sub(one, path)


def source_to_path(text: str) -> str:
    """Reverse :func:`escape_source`: the exact file name (``os.fsencode(...)`` for its bytes)."""

    def one(m: re.Match[str]) -> str:
        g: str = m.group(1)
        if g[0] == "x":
            return chr(0xDC00 + int(g[1:], 16)) if int(g[1:], 16) >= 0x80 else chr(int(g[1:], 16))
        return _ESCAPES_IN[g]

    return _UNESCAPE.sub(one, text)


def row_values(result: Result, top_k: int, model: str | None) -> list[Cell]:
    """One row as typed Python values (None = null), in :func:`header` order; ``model`` is the
    run's :func:`model_text`."""
    values: list[Cell] = [
        escape_source(result.source),
        result.frame,
        None if result.timestamp_ms is None else float(result.timestamp_ms),
        result.status.value,
        _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", result.error),  # messages may quote names
        model,
    ]
    preds = list(result.predictions[:top_k])
    for p in preds:
        values += [int(p.class_id), p.label, round(float(p.score), 6)]
    values += [None] * (3 * (top_k - len(preds)))
    return values
