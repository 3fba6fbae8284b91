"""The line-oriented formats (CSV, JSON lines): :class:`LineFormat`, what they share, and their rows
to a file through the ledger's append-only file (:mod:`.appendfile`: a failure never leaves half
a row; :meth:`ByteRowWriter.position`, the byte offset after the last complete row, is what the
resume journal records), or to stdout. A line format is appendable: ``--resume`` appends to the
output itself, and :mod:`edgeclass.run.resume` reads it back through the hooks below
(:meth:`LineFormat.inspect`: what the output holds, in one look: its size, columns, header and
which of the journal's positions end a complete row).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from edgeclass.errors import OutputError
from edgeclass.run.output.appendfile import AppendFile
from edgeclass.run.output.columns import Cell, row_values

if TYPE_CHECKING:
    from edgeclass.results import Result

Layout = str  # "current" (this release's columns, or a torn start of them), "legacy" (the release before model ids)


@dataclass(frozen=True)
class Existing:
    """What an output file holds when ``--resume`` opens it (:meth:`LineFormat.inspect`)."""

    size: int  # bytes (0: empty or missing)
    legacy: bool  # the columns of the release before model ids
    header_end: int  # where its header ends (this release's, or the legacy one)
    rows_end: tuple[bool, ...]  # for each position asked about: does a complete row end there?

    @property
    def has_rows(self) -> bool:
        return self.size > self.header_end

    def valid(self, first: int) -> int:
        """The positions asked about, from index ``first`` of the caller's list, up to the first
        that ends no complete row: how many of the caller's positions hold."""
        return first + next((i for i, ok in enumerate(self.rows_end) if not ok), len(self.rows_end))


class LineFormat:
    """A format whose rows are lines of bytes (a header line optional). A subclass gives the
    codec: :meth:`encode_header`, :meth:`encode_legacy_header`, :meth:`encode_row`,
    :meth:`split_rows`, :meth:`upgrade_rows` and :meth:`layout`; the rest is shared."""

    name: str = ""
    extensions: tuple[str, ...] = ()
    streams = True

    # ------------------------------------------------------------------ the codec (a subclass's)
    def encode_header(self, top_k: int) -> bytes:
        raise NotImplementedError

    def encode_legacy_header(self, top_k: int) -> bytes:
        """The header the release before model ids wrote."""
        raise NotImplementedError

    def encode_row(self, values: list[Cell], top_k: int) -> bytes:
        raise NotImplementedError

    def split_rows(self, data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
        """Complete rows in ``data`` (no header) as (raw bytes, source, model); a torn last row is
        left out."""
        raise NotImplementedError

    def upgrade_rows(self, data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
        """Complete rows of the release before model ids, as rows of this one (null model)."""
        raise NotImplementedError

    def layout(self, path: Path, top_k: int) -> Layout | None:
        """Which columns ``path`` (not empty) starts with: "current" (a torn header or first row
        included), "legacy", or None (other columns)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ Format
    def require(self) -> None:
        return None  # the standard library is enough

    def open_writer(self, path: Path, top_k: int, model: str | None = None) -> ByteRowWriter:
        return ByteRowWriter(self, path, top_k, None, model)

    def open_appender(self, path: Path, top_k: int, at: int | None, model: str | None = None) -> ByteRowWriter:
        """Append after cutting ``path`` back to ``at`` bytes (None: a new file)."""
        return ByteRowWriter(self, path, top_k, at, model)

    def stream_writer(self, stream: IO[str], top_k: int, model: str | None = None) -> StreamRowWriter:
        return StreamRowWriter(self, stream, top_k, model)

    def journaled(self, output: Path) -> tuple[Path, LineFormat]:
        return output, self  # appended to in place

    def before_resume(self, output: Path, target: Path, top_k: int) -> None:
        return None

    def after_resume(self, target: Path, output: Path, top_k: int) -> None:
        return None

    # ------------------------------------------------------------------ what resume reads
    def header_size(self, top_k: int) -> int:
        return len(self.encode_header(top_k))

    def header_bytes(self, top_k: int) -> bytes:
        return self.encode_header(top_k)

    def legacy_header_size(self, top_k: int) -> int:
        return len(self.encode_legacy_header(top_k))

    def data_size(self, path: Path) -> int:
        return os.stat(path).st_size

    def read_bytes(self, path: Path) -> bytes:
        return Path(path).read_bytes()

    def join(self, pieces: list[bytes], top_k: int) -> bytes:
        return b"".join(pieces)

    def _is_legacy(self, path: Path, top_k: int) -> bool:
        """Does ``path`` (not empty) have the columns of the release before model ids? False for
        this release's columns (a torn header or first row included); other columns are an
        OutputError."""
        layout = self.layout(path, top_k)
        if layout is None:
            raise OutputError(f"{path} has other columns than this run would write (another --top-k or "
                              f"--format?): use the same options, or another --output")
        return layout == "legacy"

    def inspect(self, path: Path, top_k: int, positions: list[int]) -> Existing:
        """What ``path`` holds, in one look: its size, its columns (other columns: OutputError),
        where its header ends, and for each of ``positions`` whether a complete row ends there."""
        size = self.data_size(path) if path.exists() else 0
        legacy = size > 0 and self._is_legacy(path, top_k)
        header_end = self.legacy_header_size(top_k) if legacy else self.header_size(top_k)
        ends = self._ends_rows(path, positions, size) if size > header_end else [p == 0 for p in positions]
        return Existing(size, legacy, header_end, tuple(ends))

    def _ends_rows(self, path: Path, positions: list[int], size: int) -> list[bool]:
        """For each position: does a complete row end there (within the file, the byte before it
        a newline: a power cut can leave zeros instead)? One read of the file's tail."""
        start = max(min(positions, default=1) - 1, 0)
        with open(path, "rb") as fh:
            fh.seek(start)
            tail = fh.read()
        return [p == 0 or (p <= size and tail[p - 1 - start : p - start] == b"\n") for p in positions]


class ByteRowWriter:
    """Rows of a line-oriented format appended to a file (:class:`AppendFile`: whole rows only)."""

    def __init__(self, fmt: LineFormat, path: Path, top_k: int, at: int | None = None, model: str | None = None):
        """``at=None``: a new file (truncated); ``at=N``: append after cutting the file back to N
        bytes (0 or a missing file: the header is written first). ``model``: every row's
        ``model`` column (:func:`~edgeclass.run.output.columns.model_text`)."""
        self.fmt, self.top_k, self.model = fmt, top_k, model
        self._file = AppendFile(path, at, fmt.encode_header(top_k))
        self.path = self._file.path

    def append(self, result: Result) -> None:
        self._file.write(self.fmt.encode_row(row_values(result, self.top_k, self.model), self.top_k))

    def position(self) -> int:
        return self._file.position

    def truncate(self, position: int) -> None:
        """Cut uncommitted rows off the end (a video cut short by a stop)."""
        self._file.truncate(position)

    def sync(self) -> None:
        self._file.sync()

    def close(self) -> None:
        self._file.close()


class StreamRowWriter:
    """Rows to a binary stream (stdout), flushed after each row."""

    def __init__(self, fmt: LineFormat, stream: IO[str], top_k: int, model: str | None = None):
        self.fmt, self.top_k, self.model = fmt, top_k, model
        self._text = stream
        self._binary = getattr(stream, "buffer", None)
        stream.flush()
        self._put(fmt.encode_header(top_k))

    def _put(self, data: bytes) -> None:
        if not data:
            return
        if self._binary is not None:
            self._binary.write(data)
            self._binary.flush()
        else:  # a text stream without a byte buffer (io.StringIO)
            self._text.write(data.decode("utf-8"))
            self._text.flush()

    def append(self, result: Result) -> None:
        self._put(self.fmt.encode_row(row_values(result, self.top_k, self.model), self.top_k))

    def position(self) -> int:
        return 0

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
