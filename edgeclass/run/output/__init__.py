"""Result files: one writer protocol, one module per format family.

Formats (chosen by the output's extension, or ``--format``): ``csv`` (:mod:`.csvfmt`), ``jsonl``
(:mod:`.jsonl`), ``parquet`` (:mod:`.parquetfmt`, needs the ``parquet`` extra: pyarrow, imported
only when asked). All have the columns and types of :mod:`.columns`.

The writer protocol (what ``edgeclass run`` and the distributed executor write through)::

    writer = open_writer(path, fmt, top_k, at=None, model=text)   # at=None: new file; at=N: append after N
    writer.append(result)       # one Result -> one row; raises OSError, leaving whole rows only
    writer.position()           # an int marking the end of the last complete row (bytes, or parts)
    writer.sync()               # durable on disk (fsync)
    writer.close()

``model`` is the text of every row's ``model`` column (:func:`.columns.model_text` of the
run's model id; None writes null). ``at`` comes from the resume journal
(:mod:`edgeclass.run.journal`), which records a position after each finished input;
:func:`edgeclass.run.resume.done_inputs` returns the set of inputs already in an output. Row
files are written through :class:`.appendfile.AppendFile`, as the journal is; the run writes
through the results ledger (:mod:`edgeclass.run.ledger`), not through this module directly.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from edgeclass.errors import UsageError

FORMATS = {"csv": "csvfmt", "jsonl": "jsonl", "parquet": "parquetfmt"}


def format_module(name: str) -> ModuleType:
    if name not in FORMATS:
        raise UsageError(f"unknown output format {name!r} (csv, jsonl, parquet)")
    try:
        return importlib.import_module(f"edgeclass.run.output.{FORMATS[name]}")
    except ImportError as exc:
        raise UsageError(f"--format {name} needs the '{name}' extra: pip install 'edgeclass[{name}]' ({exc})") from exc


def format_for(path: Path | None, explicit: str | None = None) -> str:
    """``--format`` if given, else from the extension (csv when unknown or stdout)."""
    if explicit:
        return explicit
    suffix = path.suffix.lower() if path is not None else ""
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    return "csv"


def open_writer(path: Path, fmt: str, top_k: int, at: int | None = None, model: str | None = None):
    module = format_module(fmt)
    if hasattr(module, "open_writer"):
        return module.open_writer(path, top_k, at, model)
    from edgeclass.run.output.bytefile import ByteRowWriter

    return ByteRowWriter(module, path, top_k, at, model)


def family(fmt: str):
    """The format's resume hooks (header size, row boundaries, splitting rows for compaction)."""
    module = format_module(fmt)
    if hasattr(module, "Family"):
        return module.Family()
    from edgeclass.run.output.bytefile import ByteFamily

    return ByteFamily(module)


def stream_writer(stream, fmt: str, top_k: int, model: str | None = None):
    if fmt == "parquet":
        raise UsageError("Parquet cannot be written to stdout: give --output FILE.parquet")
    from edgeclass.run.output.bytefile import StreamRowWriter

    return StreamRowWriter(format_module(fmt), stream, top_k, model)
