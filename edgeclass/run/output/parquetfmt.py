"""Parquet (needs the ``parquet`` extra: pyarrow, imported only when a Parquet file is written or read).

The same columns and types as CSV and JSON lines (int64, float64, string; null when not
applicable). A Parquet file cannot be appended to, so:

* without ``--resume`` rows are streamed into ``.NAME.partial`` (row groups of
  ``ROW_GROUP`` rows), which replaces NAME on a clean finish, as for CSV;
* with ``--resume`` the rows go to an append-only JSON-lines log beside the output
  (``.NAME.log.jsonl``, with its own journal: the exactly-once machinery of the line formats),
  and NAME is rebuilt from the log, atomically, at the end of every run (stopped runs
  included). A kill leaves the previous NAME intact; the next run repairs the log and rebuilds.
  The rebuild reads the log once: O(rows) per run, streamed in row groups (flat memory).
* a ``--resume`` run that finds NAME without its log (written without ``--resume``, or by a
  release without the ``model`` column) first writes the log from NAME (:func:`seed_log`), so
  no row of NAME is lost when NAME is rebuilt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from edgeclass.errors import OutputError, UsageError
from edgeclass.run.output.columns import Cell, column_types, header, legacy_header, row_values
from edgeclass.run.output.format import register
from edgeclass.run.output.jsonl import JSONL

if TYPE_CHECKING:
    import pyarrow as pa

    from edgeclass.results import Result
    from edgeclass.run.output.bytefile import LineFormat

ROW_GROUP = 4096


def schema(top_k: int) -> pa.Schema:
    import pyarrow as pa

    arrow = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
    return pa.schema([(name, arrow[kind]) for name, kind in column_types(top_k).items()])


def log_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.log.jsonl")


class ParquetRowWriter:
    """Streams rows into one Parquet file, a row group every ``ROW_GROUP`` rows."""

    def __init__(self, path: Path, top_k: int, model: str | None = None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self.path, self.top_k, self.model = Path(path), top_k, model
        self._schema = schema(top_k)
        self._writer = pq.ParquetWriter(self.path, self._schema)
        self._rows: list[list[Cell]] = []
        self._count = 0

    def append(self, result: Result) -> None:
        self._rows.append(row_values(result, self.top_k, self.model))
        self._count += 1
        if len(self._rows) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            columns = list(zip(*self._rows))
            self._writer.write_table(self._pa.table(columns, schema=self._schema))
            self._rows = []

    def position(self) -> int:
        return self._count

    def sync(self) -> None:
        self._flush()

    def close(self) -> None:
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._writer = None


def seed_log(output: Path, log: Path, top_k: int) -> int:
    """Write the JSON-lines log of an existing Parquet ``output`` that has none (rows of the
    release before model ids get a null ``model``), atomically; returns the rows. The resume
    journal is then built from the log's rows (:func:`edgeclass.run.resume.adopt`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from edgeclass import atomic

    try:
        pf = pq.ParquetFile(output)
    except (OSError, pa.ArrowException) as exc:
        raise OutputError(f"{output} is not a Parquet file edgeclass can resume ({exc}): move it away "
                          "or write to another --output") from exc
    names = pf.schema_arrow.names
    if names not in (header(top_k), legacy_header(top_k)):
        raise OutputError(f"{output} has other columns than this run would write (another --top-k?): "
                          "use the same options, or another --output")
    count = 0
    with atomic.atomic_open(log, "wb") as fh:
        for batch in pf.iter_batches(batch_size=ROW_GROUP):
            columns = batch.to_pydict()
            for i in range(batch.num_rows):
                row = {n: columns[n][i] if n in columns else None for n in header(top_k)}
                fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            count += batch.num_rows
    return count


def build_from_log(log: Path, output: Path, top_k: int) -> int:
    """Rebuild ``output`` from the JSON-lines log (complete lines only), atomically; returns rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from edgeclass import atomic

    names, sch, rows, count = header(top_k), schema(top_k), [], 0
    with atomic.atomic_open(output, "wb") as fh:
        writer = pq.ParquetWriter(fh, sch)
        with open(log, "rb") as src:
            for line in src:
                if not line.endswith(b"\n"):
                    break
                obj = json.loads(line)
                rows.append([obj.get(n) for n in names])
                if len(rows) >= ROW_GROUP:
                    writer.write_table(pa.table(list(zip(*rows)), schema=sch))
                    count, rows = count + len(rows), []
        if rows or count == 0:
            columns: list[Any] = list(zip(*rows)) if rows else [[] for _ in names]
            writer.write_table(pa.table(columns, schema=sch))
            count += len(rows)
        writer.close()
    return count


class ParquetFormat:
    """Not appendable: ``--resume`` appends to a JSON-lines log beside the output (:func:`log_path`)
    and rebuilds the output from it at the end of every run."""

    name = "parquet"
    extensions: tuple[str, ...] = (".parquet", ".pq")
    streams = False  # a Parquet file is written at its end: not to stdout

    def require(self) -> None:
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError as exc:
            raise UsageError(f"--format {self.name} needs the '{self.name}' extra: "
                             f"pip install 'edgeclass[{self.name}]' ({exc})") from exc

    def open_writer(self, path: Path, top_k: int, model: str | None = None) -> ParquetRowWriter:
        return ParquetRowWriter(path, top_k, model)

    def stream_writer(self, stream: IO[str], top_k: int, model: str | None = None) -> ParquetRowWriter:
        raise UsageError("Parquet cannot be written to stdout: give --output FILE.parquet")

    def journaled(self, output: Path) -> tuple[Path, LineFormat]:
        return log_path(output), JSONL

    def before_resume(self, output: Path, target: Path, top_k: int) -> None:
        if output.exists() and not target.exists():
            seed_log(output, target, top_k)  # a Parquet file without its log: no row is lost

    def after_resume(self, target: Path, output: Path, top_k: int) -> None:
        build_from_log(target, output, top_k)  # rebuilt from its log at the end of every run


PARQUET = register(ParquetFormat())
