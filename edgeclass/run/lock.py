"""One run per output: an advisory ``flock`` on ``<output>.lock``.

The kernel drops a ``flock`` when its process dies, however it dies, so a lock left by a
killed run is taken over by the next one without any stale-PID guessing; the PID written in
the file is only there to make the "already running" message useful.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeclass import flock
from edgeclass.errors import LockHeldError


class OutputLock:
    def __init__(self, output: Path):
        self.path = output.with_name(output.name + ".lock")
        self._fd: int | None = None
        self.took_over_from: str | None = None

    def acquire(self) -> OutputLock:
        fd = flock.open_lock(self.path)
        if not flock.try_exclusive(fd):
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeldError(
                f"another edgeclass run (pid {holder}) is writing {self.path.name[:-5]}; "
                f"exiting without doing anything (lock: {self.path})"
            ) from None
        previous = os.pread(fd, 64, 0).decode(errors="replace").strip()
        if previous:
            self.took_over_from = previous  # its process is gone: the kernel released its lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        # the file stays: unlinking it would let two later runs lock two different inodes
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
