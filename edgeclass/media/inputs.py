"""Turning command-line INPUT arguments into an ordered stream of sources.

Folders are walked recursively in sorted order, lazily (one directory listing in memory at a
time), following symlinked folders once (loops are cut). Files named explicitly are always
classified whatever their extension; inside folders only image (and video) extensions count.
``-`` reads one path per line from standard input.

With a :class:`FolderMemory` (``--resume``: :mod:`edgeclass.run.folders`) a folder it vouches for
is not listed: only its known child folders are stat'ed and walked. Each folder that is listed
is told to it as a :class:`Listed`, and passes down the stream, after its last input, as a
:data:`FOLDER` source (the consumer learns that every input of it was taken).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TextIO, TypeVar

from edgeclass.media.decode import IMAGE_EXTENSIONS

T = TypeVar("T")
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")
FOLDER = "folder"  # the kind of the source that marks the end of a listed folder (not an input)


class Listed:
    """A folder the walk listed: its identity and ``stat``, its child folders' names, how many
    inputs it held; the rest is the run's (:mod:`edgeclass.run.folders`): how many of its inputs
    have rows of another model or were sent to be classified, whether every input in it was taken
    by the run, and whether it is unsettled (an input in it is to be tried again)."""

    __slots__ = ("ident", "stat", "children", "inputs", "other", "sent", "taken", "unsettled")

    def __init__(self, ident: str, st: os.stat_result):
        self.ident, self.stat = ident, st
        self.children: list[str] = []
        self.inputs = self.other = self.sent = 0  # inputs in it; rows of another model; sent to be classified
        self.taken = self.unsettled = False


class FolderMemory(Protocol):
    """What a walk asks before listing a folder (implemented by ``run.folders.Folders``)."""

    def unchanged(self, ident: str, st: os.stat_result) -> tuple[str, ...] | None:
        """The names of the child folders of the folder ``ident`` (its ``stat``: ``st``) when it
        need not be listed (it holds nothing new), else None. Called in the listing's thread."""

    def listed(self, folder: Listed) -> None:
        """``folder`` is being listed."""


@dataclass(frozen=True)
class Source:
    """One input: ``kind`` is "image", "video", "stream" or "camera". A folder's listing also
    gives its ``identity`` (absolute, normalised path), its ``stat`` (None: it could not be
    stat'ed) and ``distinct``: no other input of the run can be the same file (one folder, or
    folders none of which holds another: :func:`unique_sources` need not remember it)."""

    path: str
    kind: str = "image"
    identity: str | None = field(default=None, compare=False, repr=False)
    stat: os.stat_result | None = field(default=None, compare=False, repr=False)
    distinct: bool = field(default=False, compare=False, repr=False)
    folder: Listed | None = field(default=None, compare=False, repr=False)  # the listed folder it is in


def classify_path(path: str) -> str:
    lower = path.lower()
    if lower.startswith(STREAM_PREFIXES):
        return "stream"
    if lower.startswith("/dev/video") or path.isdigit():
        return "camera"
    ext = os.path.splitext(lower)[1]
    return "video" if ext in VIDEO_EXTENSIONS else "image"


_KINDS = {**{ext: "image" for ext in IMAGE_EXTENSIONS}, **{ext: "video" for ext in VIDEO_EXTENSIONS}}


def _wanted(name: str, include_videos: bool) -> bool:
    return _listed_kind(name, include_videos) is not None


def _listed_kind(name: str, include_videos: bool) -> str | None:
    """"image" or "video" for a file a folder listing takes (by its extension, as
    ``os.path.splitext`` splits it), None for the others."""
    dot = name.rfind(".")
    if dot <= 0:
        return None
    ext = name[dot:]
    kind = _KINDS.get(ext) or _KINDS.get(ext.lower())
    if kind is None or (kind == "video" and not include_videos) or not name[:dot].strip("."):
        return None
    return kind


def walk_sorted(root: str, include_videos: bool = True) -> Iterator[str]:
    """Files under ``root`` with wanted extensions, in sorted path order, lazily."""
    return _walk(root, include_videos, lambda path, ident, kind, folder: path)


def listed_sources(root: str, include_videos: bool = True, distinct: bool = False,
                   folders: FolderMemory | None = None) -> Iterator[Source]:
    """:func:`walk_sorted` as Sources with their identity (absolute, normalised: ``root``'s
    once, then joined names) and ``os.stat`` (taken here, in the listing's thread); with
    ``folders``, the folders it vouches for are not listed, and a :data:`FOLDER` source follows
    each listed folder's last input."""
    new, stat = object.__new__, os.stat

    def make(path: str, ident: str, kind: str, folder: Listed | None) -> Source:
        source = new(Source)  # a frozen dataclass's __init__ costs twice this, a million times
        try:
            st = stat(path)
        except (OSError, ValueError):
            st = None
        source.__dict__.update(path=path, kind=kind, identity=ident, stat=st, distinct=distinct, folder=folder)
        return source

    return _walk(root, include_videos, make, folders)


def _scan(directory: str) -> list[os.DirEntry] | None:
    """The entries of ``directory`` sorted by name; None: gone or unreadable (a mount that went
    away): nothing listed, nothing lost."""
    try:
        with os.scandir(directory) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return None


class _Known:
    """A child folder a :class:`FolderMemory` named (a scandir entry's stand-in)."""

    __slots__ = ("name", "path")

    def __init__(self, directory: str, name: str):
        self.name, self.path = name, os.path.join(directory, name)

    def is_dir(self, follow_symlinks: bool = True) -> bool:
        return True  # its listing stats it: what is no folder now lists nothing


def _walk(root: str, include_videos: bool, make: Callable[[str, str, str, Listed | None], T],
          folders: FolderMemory | None = None) -> Iterator[T]:
    """``make(path, identity, kind, folder)`` of each file under ``root`` with a wanted
    extension, in sorted path order, lazily (the listings of the folders above the current one in
    memory; one generator frame, however deep: a million files are yielded from here, not passed
    up a chain); with ``folders``, ``make(ident, ident, FOLDER, folder)`` after a listed folder."""
    seen: set[tuple[int, int]] = set()

    def listing(directory: str, ident: str) -> tuple[list, Listed | None] | None:
        try:
            st = os.stat(directory)
        except OSError:
            return None
        key = (st.st_dev, st.st_ino)
        if key in seen:  # symlink loop or a folder reached twice
            return None
        seen.add(key)
        children = folders.unchanged(ident, st) if folders is not None else None
        if children is not None:  # nothing new in it: only its child folders are walked
            return [_Known(directory, name) for name in children], None
        entries = _scan(directory)
        if entries is None or folders is None:
            return (entries, None) if entries is not None else None
        folder = Listed(ident, st)
        folders.listed(folder)
        return entries, folder

    def files() -> Iterator[T]:
        base = os.path.normpath(os.path.abspath(root))
        top = listing(root, base)
        stack = [(iter(top[0]), base.rstrip("/") + "/", top[1])] if top is not None else []
        while stack:
            entries, prefix, folder = stack[-1]
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=True)
                except OSError:
                    is_dir = False
                if is_dir:
                    if folder is not None:
                        folder.children.append(entry.name)
                    below = listing(entry.path, prefix + entry.name)
                    if below is not None:
                        stack.append((iter(below[0]), prefix + entry.name + "/", below[1]))
                        break
                    continue
                kind = _listed_kind(entry.name, include_videos)
                if kind is not None:  # broken symlinks and loops are kept: they become rows with a status
                    if folder is not None:
                        folder.inputs += 1
                    yield make(entry.path, prefix + entry.name, kind, folder)
            else:
                stack.pop()
                if folder is not None:
                    yield make(folder.ident, folder.ident, FOLDER, folder)

    return files()


def _stdin_paths(stream: TextIO) -> Iterator[str]:
    for line in stream:
        line = line.rstrip("\n").rstrip("\r")
        if line:
            yield line


def expand_inputs(args: Iterable[str], stdin: TextIO | None = None, include_videos: bool = True,
                  folders: FolderMemory | None = None) -> Iterator[Source]:
    """Expand INPUT arguments to sources, in argument order then sorted order within folders
    (``folders``: see :func:`listed_sources`)."""
    stdin = stdin if stdin is not None else sys.stdin
    args = list(args)
    distinct = _disjoint(args)
    for arg in args:
        if arg == "-":
            for line in _stdin_paths(stdin):
                yield from expand_inputs([line], stdin, include_videos, folders)
            continue
        kind = classify_path(arg)
        if kind in ("stream", "camera"):
            yield Source(arg, kind)
        elif os.path.isdir(arg):
            yield from listed_sources(arg, include_videos, distinct, folders)
        else:
            # a named file, or one that does not exist: either way it gets a row
            yield Source(arg, kind)


def _disjoint(args: list[str]) -> bool:
    """No file a folder of ``args`` lists can be another input: no stdin, and no argument's path
    is another's or inside it (listed paths start with their folder's; links are other names)."""
    if "-" in args:
        return False
    paths = [os.path.normpath(os.path.abspath(a)) for a in args if classify_path(a) not in ("stream", "camera")]
    unique = set(paths)
    if len(unique) < len(paths):
        return False
    for path in paths:
        parent = os.path.dirname(path)
        while parent != path:
            if parent in unique:
                return False
            path, parent = parent, os.path.dirname(parent)
    return True


def unique_sources(sources: Iterable[Source]) -> Iterator[Source]:
    """Each input once: the same file given twice, or by two spellings of its path (``a.jpg``,
    ``./a.jpg``, ``d/../a.jpg``, a folder and a file inside it), is classified once, at its
    first place. Symbolic links are distinct inputs (they are other names, not other spellings).
    A listed source marked ``distinct`` cannot repeat: it is passed on without being remembered
    (memory stays flat over a million-file folder)."""
    seen: set[str] = set()
    for source in sources:
        if source is not None and not source.distinct and source.kind != FOLDER:
            if source.kind in ("stream", "camera"):
                key = source.path
            else:
                key = source.identity or os.path.normpath(os.path.abspath(source.path))
            if key in seen:
                continue
            seen.add(key)
        yield source


def count_images(args: list[str]) -> int | None:
    """How many rows a run of only images will write (for a progress bar's ETA); None when
    stdin, videos or streams make that unknown."""
    if "-" in args:
        return None
    n = 0
    for source in expand_inputs(args):
        if source.kind != "image":
            return None
        n += 1
    return n


def prefetch(iterator: Iterator, stop, maxsize: int = 1024, poll: float = 0.1, batch: int = 1024) -> Iterator:
    """Run ``iterator`` in a daemon thread so a slow source (a stalled stdin pipe, a hanging
    network folder) never keeps the consumer from noticing ``stop`` (a threading.Event).

    Yields None whenever nothing arrived within ``poll`` seconds, so the consumer can finish
    the work it already has instead of waiting for more. Items pass through a deque; a folder
    listing's sources (they carry an ``identity``) are handed over ``batch`` at a time, once the
    consumer took the previous batch, any other item at once. Per item there is no lock and no
    thread switch: running together, the threads would trade the GIL at every ``stat``."""
    import threading

    state = _Handoff(stop, poll)
    items, cond = state.items, state.cond
    threading.Thread(target=state.produce, args=(iterator, maxsize, batch), name="edgeclass-inputs",
                     daemon=True).start()
    while not stop.is_set():
        try:
            item = items.popleft()
        except IndexError:
            if state.end and not items:
                if state.error is not None:
                    raise state.error
                return
            if not _wait(items, cond, state, poll):
                yield None
            continue
        if state.full and (not items or len(items) < maxsize // 2):
            with cond:
                cond.notify_all()
        yield item


class _Handoff:
    """What :func:`prefetch`'s two threads share: the items, and what they tell each other
    besides; :meth:`produce` is the listing thread."""

    def __init__(self, stop, poll: float) -> None:
        import threading
        from collections import deque

        self.items: deque = deque()
        self.cond = threading.Condition()
        self.stop, self.poll = stop, poll
        self.end = self.waiting = self.full = False
        self.error: BaseException | None = None

    def hand_over(self, pending: list, room: int) -> bool:
        """Add ``pending`` once the deque holds at most ``room`` items; False: stopped."""
        items, cond = self.items, self.cond
        if len(items) > room:
            with cond:
                self.full = True
                while len(items) > room and not self.stop.is_set():
                    cond.wait(self.poll)
                self.full = False
        if self.stop.is_set():
            return False
        items.extend(pending)
        if self.waiting:
            with cond:
                cond.notify_all()
        return True

    def produce(self, iterator: Iterator, maxsize: int, batch: int) -> None:
        pending: list = []
        try:
            for item in iterator:
                pending.append(item)
                listed = getattr(item, "identity", None) is not None
                if listed and len(pending) < batch:
                    continue  # a folder listing's: more follow at once, handed over together
                # a listing's batch waits until the consumer took the last one: the threads take
                # turns (running together, they would trade the GIL at every stat)
                if not self.hand_over(pending, 0 if listed else maxsize // 2):
                    return
                pending = []
            self.hand_over(pending, maxsize)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            self.hand_over(pending, maxsize)
            self.error = exc
        finally:
            self.end = True
            with self.cond:
                self.cond.notify_all()


def _wait(items, cond, state: _Handoff, poll: float) -> bool:
    """Wait up to ``poll`` for an item or the end; False: nothing came."""
    with cond:
        state.waiting = True
        try:
            if items or state.end:
                return True
            return cond.wait(poll) or bool(items) or state.end
        finally:
            state.waiting = False
