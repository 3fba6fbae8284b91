"""The one way edgeclass replaces a file: write a temporary sibling, fsync it, rename it over
the target, fsync the folder. A reader sees the old file or the new one, never a mix; after a
power cut the target is one or the other.

Every file the product replaces goes through here (results on a clean finish, summary JSON,
resume state, IR pairs through :func:`replace_group`); a file that must not overwrite anything
(`--move`'s copy across file systems) is published with :func:`publish_new`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_sibling(path: Path, tag: str = "tmp") -> Path:
    """A hidden name beside ``path`` with the same suffix (same filesystem, so the rename is
    atomic; ``model.xml`` and ``model.bin`` get temporaries sharing one stem, as OpenVINO wants)."""
    return path.with_name(f".{path.stem}.{tag}-{os.getpid()}{path.suffix}")


def _dead(pid: int) -> bool:
    """A process that cannot be writing a temporary file now (this one counts: it is not)."""
    return pid == os.getpid() or (os.path.isdir("/proc") and not os.path.exists(f"/proc/{pid}"))


def remove_stale_temps(folder: Path, tags: tuple[str, ...]) -> None:
    """Remove the temporary files (:func:`temp_sibling` with one of ``tags``) that killed
    processes left in ``folder``. One directory scan: call it once per folder, not per file."""
    pattern = re.compile(rf"^\..*\.(?:{'|'.join(map(re.escape, tags))})-(\d+)(?:\.[^.]*)?$")
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = pattern.match(entry.name)
            if match and _dead(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb", durable: bool = True) -> Iterator[IO[Any]]:
    """``with atomic_open(p) as fh: fh.write(...)``: ``p`` is replaced only if the block succeeds."""
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    with atomic_open(path, "wb", durable) as fh:
        fh.write(data)


def write_text(path: Path, text: str, durable: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), durable)


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk (a symbolic link: nothing to flush)."""
    if os.path.islink(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(tmp: Path, path: Path, durable: bool = True) -> None:
    """Move an already written ``tmp`` over ``path`` (fsyncs ``tmp`` first when ``durable``)."""
    if durable:
        fsync_file(tmp)
    os.replace(tmp, path)
    if durable:
        fsync_dir(Path(path).parent)


def publish_new(tmp: Path, path: Path) -> None:
    """Put an already written ``tmp`` at ``path`` only if nothing is there (``FileExistsError``
    otherwise, ``tmp`` removed): durable, atomic, never overwriting (a hard link, then unlink)."""
    fsync_file(tmp)
    try:
        os.link(tmp, path, follow_symlinks=False)
    finally:
        os.unlink(tmp)
    fsync_dir(Path(path).parent)


def replace_group(write: Callable[[dict[Path, Path]], None], targets: list[Path]) -> None:
    """Replace several files that belong together (an IR's ``.xml`` and ``.bin``).

    ``write`` receives ``{target: temporary path}`` and writes every temporary file. Then all
    are fsynced and renamed, the first target last (for an IR: the ``.bin`` first, then the
    ``.xml``, whose presence marks a complete model). Readers that must never see a mixed pair
    hold :func:`edgeclass.modelfiles.folder.ModelDir.reading` (a shared lock) while they read;
    the renames happen under the exclusive lock.
    """
    temps = {t: temp_sibling(t) for t in targets}
    try:
        write(temps)
        for target in reversed(targets):
            replace_file(temps[target], target, durable=True)
    finally:
        for tmp in temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
