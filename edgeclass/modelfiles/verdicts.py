"""The verdict of the last ``compare`` of each pair of models, where ``promote`` finds it.

A small JSON file in the NEW model's folder (``comparisons.json``), one entry per (OLD id, NEW
id), the latest compare of that pair replacing the earlier one. Written atomically
(:mod:`edgeclass.atomic`) under the folder's write lock, read here only: this module is the
file's one reader and writer.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from edgeclass import atomic
from edgeclass.modelfiles.folder import ModelDir

RECORD = "comparisons.json"
SCHEMA = 1


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = data.get("comparisons") if isinstance(data, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def record(new_dir: Path, entry: dict[str, Any]) -> Path:
    """Store ``entry`` (``old``, ``new`` ids, ``verdict``...) as the last compare of its pair.
    Raises OSError when the folder cannot be written."""
    path = new_dir / RECORD
    entry = {**entry, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "at_epoch": time.time()}
    with ModelDir(new_dir).writing():
        kept = [e for e in _read(path) if (e.get("old"), e.get("new")) != (entry["old"], entry["new"])]
        atomic.write_text(path, json.dumps({"schema": SCHEMA, "comparisons": kept + [entry]}, indent=2) + "\n")
    return path


def last_verdict(new_dir: Path, old_ids: set[str], new_ids: set[str]) -> dict[str, Any] | None:
    """The latest recorded compare of a model with an id in ``old_ids`` against one in
    ``new_ids`` (any precision of each folder), or None."""
    matches = [e for e in _read(new_dir / RECORD) if e.get("old") in old_ids and e.get("new") in new_ids]
    return max(matches, key=lambda e: float(e.get("at_epoch") or 0.0), default=None)
