"""Turning command-line INPUT arguments into an ordered stream of sources.

Folders are walked recursively in sorted order, lazily (one directory listing in memory at a
time), following symlinked folders once (loops are cut). Files named explicitly are always
classified whatever their extension; inside folders only image (and video) extensions count.
``-`` reads one path per line from standard input.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from edgeclass.media.decode import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class Source:
    """One input: ``kind`` is "image", "video", "stream" or "camera"."""

    path: str
    kind: str = "image"


def classify_path(path: str) -> str:
    lower = path.lower()
    if lower.startswith(STREAM_PREFIXES):
        return "stream"
    if lower.startswith("/dev/video") or path.isdigit():
        return "camera"
    ext = os.path.splitext(lower)[1]
    return "video" if ext in VIDEO_EXTENSIONS else "image"


def _wanted(name: str, include_videos: bool) -> bool:
    ext = os.path.splitext(name)[1].lower()
    return ext in IMAGE_EXTENSIONS or (include_videos and ext in VIDEO_EXTENSIONS)


def walk_sorted(root: str, include_videos: bool = True) -> Iterator[str]:
    """Files under ``root`` with wanted extensions, in sorted path order, lazily."""
    seen: set[tuple[int, int]] = set()

    def visit(directory: str) -> Iterator[str]:
        try:
            st = os.stat(directory)
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:  # symlink loop or a folder reached twice
            return
        seen.add(key)
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                yield from visit(entry.path)
            elif _wanted(entry.name, include_videos):
                # broken symlinks and loops are kept: they become rows with a status
                yield entry.path

    yield from visit(root)


def _stdin_paths(stream: TextIO) -> Iterator[str]:
    for line in stream:
        line = line.rstrip("\n").rstrip("\r")
        if line:
            yield line


def expand_inputs(args: Iterable[str], stdin: TextIO | None = None, include_videos: bool = True) -> Iterator[Source]:
    """Expand INPUT arguments to sources, in argument order then sorted order within folders."""
    stdin = stdin if stdin is not None else sys.stdin
    for arg in args:
        if arg == "-":
            for line in _stdin_paths(stdin):
                yield from expand_inputs([line], stdin, include_videos)
            continue
        kind = classify_path(arg)
        if kind in ("stream", "camera"):
            yield Source(arg, kind)
        elif os.path.isdir(arg):
            for path in walk_sorted(arg, include_videos):
                yield Source(path, classify_path(path))
        else:
            # a named file, or one that does not exist: either way it gets a row
            yield Source(arg, kind)


def unique_sources(sources: Iterable[Source]) -> Iterator[Source]:
    """Each input once: the same file given twice, or by two spellings of its path (``a.jpg``,
    ``./a.jpg``, ``d/../a.jpg``, a folder and a file inside it), is classified once, at its
    first place. Symbolic links are distinct inputs (they are other names, not other spellings)."""
    seen: set[str] = set()
    for source in sources:
        if source is not None:
            key = source.path if source.kind in ("stream", "camera") else os.path.normpath(os.path.abspath(source.path))
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


def prefetch(iterator: Iterator, stop, maxsize: int = 1024, poll: float = 0.1) -> Iterator:
    """Run ``iterator`` in a daemon thread so a slow source (a stalled stdin pipe, a hanging
    network folder) never keeps the consumer from noticing ``stop`` (a threading.Event).

    Yields None whenever nothing arrived within ``poll`` seconds, so the consumer can finish
    the work it already has instead of waiting for more."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize)
    end = object()

    def produce() -> None:
        try:
            for item in iterator:
                while True:
                    if stop.is_set():
                        return
                    try:
                        q.put(item, timeout=poll)
                        break
                    except queue.Full:
                        continue
            q.put((end, None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put((end, exc))

    threading.Thread(target=produce, name="edgeclass-inputs", daemon=True).start()
    while not stop.is_set():
        try:
            item = q.get(timeout=poll)
        except queue.Empty:
            yield None
            continue
        if isinstance(item, tuple) and len(item) == 2 and item[0] is end:
            if item[1] is not None:
                raise item[1]
            return
        yield item
