"""The one place that hashes: files, byte strings, lists of files (sha256, hex)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], h: hashlib._Hash | None = None) -> str:
    """sha256 of a file's bytes (read in 1 MiB chunks); with ``h``, feeds that hash instead."""
    h = hashlib.sha256() if h is None else h
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """One sha256 over the bytes of several files, in the order given."""
    h = hashlib.sha256()
    for p in paths:
        sha256_file(p, h)
    return h.hexdigest()
