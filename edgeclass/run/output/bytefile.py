"""Rows of the line-oriented formats (CSV, JSON lines): to a file through the ledger's append-only
file (:mod:`.appendfile`: a failure never leaves half a row; :meth:`ByteRowWriter.position`, the
byte offset after the last complete row, is what the resume journal records), or to stdout.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from edgeclass.results import Result
from edgeclass.run.output.appendfile import AppendFile
from edgeclass.run.output.columns import header, legacy_header, row_values


def _keys(line: bytes) -> list[str]:
    import json

    try:
        return list(json.loads(line))
    except ValueError:
        return []


class ByteRowWriter:
    """Rows of a line-oriented format appended to a file (:class:`AppendFile`: whole rows only)."""

    def __init__(self, fmt: ModuleType, path: Path, top_k: int, at: int | None = None, model: str | None = None):
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

    def __init__(self, fmt: ModuleType, stream, top_k: int, model: str | None = None):
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


class ByteFamily:
    """What resume needs to know about a line-oriented format (positions are byte offsets)."""

    def __init__(self, fmt: ModuleType):
        self.fmt = fmt

    def header_size(self, top_k: int) -> int:
        return len(self.fmt.encode_header(top_k))

    def data_size(self, path: Path) -> int:
        return os.stat(path).st_size

    def header_bytes(self, top_k: int) -> bytes:
        return self.fmt.encode_header(top_k)

    def legacy_header_size(self, top_k: int) -> int:
        return len(self.fmt.encode_legacy_header(top_k))

    def is_legacy(self, path: Path, top_k: int) -> bool:
        """Does ``path`` (not empty) have the columns of the release before model ids? False for
        this release's columns (a torn header or first row included); other columns are an
        OutputError."""
        from edgeclass.errors import OutputError

        current, legacy = self.fmt.encode_header(top_k), self.fmt.encode_legacy_header(top_k)
        with open(path, "rb") as fh:
            first = fh.read(len(current) + 1) if current else fh.readline(1 << 24)
        if current:  # CSV: the header line (a torn one is a prefix)
            if first[: len(current)] == current[: len(first)] or legacy.startswith(first):
                return False  # this release's header, or a torn header and no row
            if first[: len(legacy)] == legacy:
                return True
        elif not first.endswith(b"\n") or _keys(first) == header(top_k):  # JSON lines: the keys of the first row
            return False
        elif _keys(first) == legacy_header(top_k):
            return True
        raise OutputError(f"{path} has other columns than this run would write (another --top-k or "
                          f"--format?): use the same options, or another --output")

    def ends_rows(self, path: Path, positions: list[int], size: int) -> list[bool]:
        """For each position: does a complete row end there (within the file, the byte before it
        a newline: a power cut can leave zeros instead)? One read of the file's tail."""
        start = max(min(positions, default=1) - 1, 0)
        with open(path, "rb") as fh:
            fh.seek(start)
            tail = fh.read()
        return [p == 0 or (p <= size and tail[p - 1 - start : p - start] == b"\n") for p in positions]

    def read_bytes(self, path: Path) -> bytes:
        return Path(path).read_bytes()

    def split_rows(self, data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
        """Complete rows as (raw bytes, source, model)."""
        return self.fmt.split_rows(data, top_k)

    def upgrade_rows(self, data: bytes, top_k: int) -> list[tuple[bytes, str, str]]:
        """Complete rows of the release before model ids, as rows of this one (null model)."""
        return self.fmt.upgrade_rows(data, top_k)

    def join(self, pieces: list[bytes], top_k: int) -> bytes:
        return b"".join(pieces)
