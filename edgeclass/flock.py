"""The one place that takes ``flock(2)`` locks: one run per output (``run.lock``), IR pairs
read and replaced whole (``modelfiles.folder``), one promotion at a time (``modelfiles.promote``).

The kernel drops a ``flock`` when its process dies, however it dies, so a lock left by a killed
process is simply taken by the next one. Lock files are never unlinked: two later processes
would lock two different inodes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def open_lock(path: str | os.PathLike[str], directory: bool = False) -> int:
    """A descriptor to lock: ``path`` as a lock file (created when missing), or a folder itself.
    Raises ``OSError`` (a read-only folder, a missing parent)."""
    if directory:
        return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)


def try_exclusive(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def holding(fd: int, shared: bool = False) -> Iterator[int]:
    """Wait for a shared or exclusive lock on ``fd``; closing ``fd`` at the end drops it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path, shared: bool = False, directory: bool = False) -> Iterator[int]:
    """``open_lock`` + ``holding``: the lock on ``path`` for the ``with`` block."""
    with holding(open_lock(path, directory), shared) as fd:
        yield fd
