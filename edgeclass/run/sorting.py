"""``--copy-into DIR`` / ``--link-into DIR``: classified image files sorted into ``DIR/<label>/``.

* A still image whose row is ``ok`` goes to ``DIR/<top-1 label>/``; one whose top-1 score is
  below ``--min-score`` (row label ``unknown``) to ``DIR/_uncertain/``. Video frames, streams
  and failed rows are not sorted.
* Modes: ``copy`` (content and mtime copied), ``symlink`` (absolute target), ``hardlink``,
  ``move`` (only with ``--copy-into ... --move``: the user's file leaves its folder; never a
  partial file at the destination, a move cut by a kill is finished by the next run over it).
* Idempotent: the place of a file is ``<label>/<its name>``; when that name is already held by
  a *different* file, ``<stem>~<8 hex of its path><suffix>``. A place that already holds this
  file (same link target, same inode, or a copy with the same size and mtime) is left alone, so
  runs over the same inputs, with or without ``--resume``, never duplicate anything.
* The user's files are never modified; copies and links are written under a temporary name and
  renamed into place (:mod:`edgeclass.atomic`).
* Copies and links are made just before a file's row is written, moves just after
  (:func:`sorters`), so rows and sorted files agree after a kill.
"""

from __future__ import annotations

import errno
import filecmp
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeclass.hashing import sha256_bytes
from edgeclass.atomic import fsync_dir, publish_new, remove_stale_temps, replace_file, temp_sibling
from edgeclass.errors import OutputError
from edgeclass.results import UNKNOWN_LABEL, Result

UNCERTAIN = "_uncertain"
TEMP_TAGS = ("sort", "move")  # temp_sibling tags of copies/links and of moves across file systems
MODES = ("copy", "symlink", "hardlink", "move")
# os.link's errors that mean "no hard link here" (another file system, FAT, some network mounts)
_NO_HARD_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK})


@dataclass(frozen=True)
class SortOptions:
    root: Path
    mode: str = "copy"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")


def folder_name(label: str) -> str:
    """A label as one path component: no separators, never ``.``/``..`` or empty."""
    if label == UNKNOWN_LABEL:
        return UNCERTAIN
    name = label.replace("/", "_").replace("\\", "_").replace("\0", "_").strip()
    return name if name not in ("", ".", "..") else f"_{name or 'empty'}"


def _holds(dest: Path, source: Path, mode: str) -> bool:
    """Does ``dest`` already hold ``source`` as ``mode`` would have placed it?"""
    try:
        if mode == "symlink":
            return dest.is_symlink() and os.readlink(dest) == str(source)
        if dest.is_symlink():
            return False
        if mode == "hardlink":
            return os.path.samefile(dest, source)
        a, b = dest.stat(), source.stat()
        return a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime)
    except OSError:
        return False


def destination(root: Path, label: str, source: Path, mode: str) -> tuple[Path, bool]:
    """(where ``source`` goes, whether it is already there)."""
    folder = root / folder_name(label)
    plain = folder / source.name
    if not os.path.lexists(plain) or _holds(plain, source, mode):
        return plain, os.path.lexists(plain)
    hashed = folder / _hashed_name(source)
    return hashed, os.path.lexists(hashed) and _holds(hashed, source, mode)


def _hashed_name(source: Path) -> str:
    """The place's name when another file holds ``source``'s own name there."""
    tag = sha256_bytes(os.fsencode(source))[:8]
    return f"{source.stem}~{tag}{source.suffix}"


def _move(source: Path, dest: Path) -> None:
    """Move without ever overwriting, and so that a kill at any point leaves the file whole at
    ``source``, or at both places (the next run finishes the move, :func:`finish_move`); never
    a partial file at ``dest``. Same file system: a hard link, then unlink. Across file systems
    (or without hard links): a durable copy under a temporary name, linked into place."""
    try:
        os.link(source, dest, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINK:
            raise
        tmp = temp_sibling(dest, "move")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if source.is_symlink():
            os.symlink(os.readlink(source), tmp)
        else:
            shutil.copy2(source, tmp)
        publish_new(tmp, dest)
    else:
        fsync_dir(dest.parent)
    os.unlink(source)


def finish_move(source: Path, dest: Path) -> bool:
    """``dest`` already holds ``source`` (an interrupted move, or the file put back in its
    folder): remove ``source`` when ``dest`` is the same file or has the same bytes."""
    try:
        if source.name == dest.name and os.path.samestat(os.stat(source.parent), os.stat(dest.parent)):
            return False  # one directory entry (sorting into the input folder): nothing to finish
        same = os.path.samestat(os.lstat(source), os.lstat(dest)) or (
            not source.is_symlink() and not dest.is_symlink() and filecmp.cmp(source, dest, shallow=False))
        if same:
            os.unlink(source)
        return same
    except OSError:
        return False


def finish_cut_move(options: SortOptions | None, source: Path) -> bool:
    """Under ``--move``, a file that ``--resume`` skips (its row is written) but that is still in
    its folder is a move cut by a kill: finish it when one of the sorted folders holds it."""
    if options is None or options.mode != "move" or not os.path.lexists(source):
        return False
    try:
        folders = [Path(e.path) for e in os.scandir(options.root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return False
    return any(os.path.lexists(folder / name) and finish_move(source, folder / name)
               for folder in folders for name in (source.name, _hashed_name(source)))


def place(source: Path, dest: Path, mode: str) -> None:
    """Put ``source`` at ``dest`` (replacing what a rename can replace; moves never overwrite)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if mode == "move":
        _move(source, dest)
        return
    tmp = temp_sibling(dest, "sort")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    if mode == "copy":
        shutil.copy2(source, tmp)
    elif mode == "symlink":
        os.symlink(source, tmp)
    else:
        os.link(source, tmp)
    replace_file(tmp, dest, durable=False)


class Sorter:
    """Places the file of every ok still-image result (called around its row: :func:`sorters`)."""

    def __init__(self, options: SortOptions, event: Callable[[str], None]):
        self.options = options
        self._event = event
        self._cleaned: set[Path] = set()
        try:
            options.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {options.root}: {exc.strerror or exc}") from exc
        if not os.access(options.root, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write into {options.root}")

    def __call__(self, result: Result) -> None:
        if result.frame is not None or not result.ok or not result.predictions:
            return
        source = Path(os.path.abspath(result.source))
        dest, there = destination(self.options.root, result.predictions[0].label, source, self.options.mode)
        if there:
            if self.options.mode == "move":
                finish_move(source, dest)
            return
        try:
            if dest.parent not in self._cleaned:  # a killed run's temporaries: once per folder and run
                remove_stale_temps(dest.parent, TEMP_TAGS)
                self._cleaned.add(dest.parent)
            place(source, dest, self.options.mode)
        except OSError as exc:
            self._event(f"not sorted: {result.source} -> {dest}: {exc.strerror or exc}")


def sorters(options: SortOptions | None, event: Callable[[str], None]) -> tuple[Callable[[Result], None], ...]:
    """The runner's two hooks, called just before and just after a result's row is written. Copies
    and links are made before: a written row then always means the file is in place, so a
    ``--resume`` run that skips the file after a kill has no sorting left to do (a kill between the
    two leaves a placed file without a row: the next run classifies it again, and finds it placed).
    Moves are made after: a file must not leave its folder before its row exists."""
    def nothing(result: Result) -> None:
        return None

    if options is None:
        return nothing, nothing
    sort = Sorter(options, event)
    return (nothing, sort) if options.mode == "move" else (sort, nothing)
