"""Appending rows to a line-oriented file (CSV, JSON lines) so a failure never leaves half a row.

Each row is one unbuffered ``os.write`` sequence; after every row the file ends on a row
boundary. If a write fails (disk full, file-size limit) the partial row is cut off again, so
the rows already written stay intact. :meth:`ByteRowWriter.position` is the byte offset after
the last complete row: the resume journal records it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from edgeclass.results import Result
from edgeclass.run.output.columns import header, legacy_header, row_values


def _keys(line: bytes) -> list[str]:
    import json

    try:
        return list(json.loads(line))
    except ValueError:
        return []


class ByteRowWriter:
    def __init__(self, fmt: ModuleType, path: Path, top_k: int, at: int | None = None, model: str | None = None):
        """``at=None``: a new file (truncated); ``at=N``: append after cutting the file back to N
        bytes (0 or a missing file: the header is written first). ``model``: every row's
        ``model`` column (:func:`~edgeclass.run.output.columns.model_text`)."""
        self.fmt, self.path, self.top_k, self.model = fmt, Path(path), top_k, model
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | (os.O_TRUNC if at is None else 0)
        self._fd: int | None = os.open(self.path, flags, 0o644)
        if at is not None and os.fstat(self._fd).st_size != at:
            os.ftruncate(self._fd, at)  # a torn or uncommitted tail, cut in place
        self._good = at or 0
        os.lseek(self._fd, self._good, os.SEEK_SET)
        if self._good == 0:
            self._write(fmt.encode_header(top_k))

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            try:
                os.ftruncate(self._fd, self._good)
                os.lseek(self._fd, self._good, os.SEEK_SET)
            except OSError:
                pass
            raise
        self._good += len(data)

    def append(self, result: Result) -> None:
        self._write(self.fmt.encode_row(row_values(result, self.top_k, self.model), self.top_k))

    def position(self) -> int:
        return self._good

    def truncate(self, position: int) -> None:
        """Cut uncommitted rows off the end (a video cut short by a stop)."""
        os.ftruncate(self._fd, position)
        os.lseek(self._fd, position, os.SEEK_SET)
        self._good = position

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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
