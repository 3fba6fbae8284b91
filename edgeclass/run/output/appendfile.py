"""The one append-only file of the results ledger: row files (CSV, JSON lines) and the resume
journal are both written through :class:`AppendFile`.

Each record (a row, a journal line) goes down in unbuffered ``os.pwrite`` calls at the end of
the last complete record; if a write fails (disk full, file-size limit) the partial record is
cut off again, so the file always ends on a record boundary and the records already written
stay intact. :attr:`AppendFile.position` is the byte offset after the last complete record.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class AppendFile:
    def __init__(self, path: Path, at: int | None, header: bytes = b""):
        """``at=None`` or ``0``: a new file holding ``header``; ``at=N``: continue after cutting the
        file back, in place, to its first N bytes (a torn or uncommitted tail)."""
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | (os.O_TRUNC if at is None else 0)
        self._fd = os.open(self.path, flags, 0o644)  # -1 once closed
        try:
            if at is not None and os.fstat(self._fd).st_size != at:
                os.ftruncate(self._fd, at)
            self.position = at or 0
            if self.position == 0:
                self.write(header)
        except BaseException:
            self.close()
            raise

    def write(self, data: bytes) -> None:
        """Append ``data`` whole, or raise ``OSError`` leaving the file as it was."""
        try:
            view, at = memoryview(data), self.position
            while view:
                n = os.pwrite(self._fd, view, at)
                view, at = view[n:], at + n
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.position)
            raise
        self.position += len(data)

    def truncate(self, position: int) -> None:
        """Cut the records after ``position`` off the end (uncommitted rows)."""
        os.ftruncate(self._fd, position)
        self.position = position

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
