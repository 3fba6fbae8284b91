"""What an output format is (the :class:`Format` protocol), and the registry of formats.

A format is one object, registered by its own module (:func:`register`), resolved once from
``--format`` or the output's extension (:func:`format_for`), and handed on as that object: the
results ledger asks it for writers and for how ``--resume`` appends to it, and never asks which
format it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, TypeVar

from edgeclass.errors import UsageError

if TYPE_CHECKING:
    from edgeclass.results import Result
    from edgeclass.run.output.bytefile import LineFormat


class RowWriter(Protocol):
    """Rows of one run into one file or stream."""

    def append(self, result: Result) -> None:
        """One Result -> one row; raises OSError, leaving whole rows only."""

    def position(self) -> int:
        """An int marking the end of the last complete row (bytes, or parts)."""

    def sync(self) -> None:
        """Durable on disk (fsync)."""

    def close(self) -> None: ...


class Format(Protocol):
    """An output format: its name and extensions, its writers, and how ``--resume`` appends to it."""

    name: str  # the --format choice
    extensions: tuple[str, ...]  # lower case, with the dot: the output names that choose it
    streams: bool  # can be written to stdout (no -o)

    def require(self) -> None:
        """Raise :class:`UsageError` when what the format needs (an extra) is not installed."""

    def open_writer(self, path: Path, top_k: int, model: str | None = None) -> RowWriter:
        """A new file at ``path`` (``model``: every row's ``model`` column)."""

    def stream_writer(self, stream: IO[str], top_k: int, model: str | None = None) -> RowWriter:
        """Rows to ``stream`` (stdout), flushed row by row."""

    def journaled(self, output: Path) -> tuple[Path, LineFormat]:
        """Where ``--resume`` appends rows for ``output`` (the journal's positions are in this
        file), and in which appendable format: ``output`` itself, or a log beside it."""

    def before_resume(self, output: Path, target: Path, top_k: int) -> None:
        """Before ``--resume`` opens ``target``: make it hold ``output``'s rows, when it must."""

    def after_resume(self, target: Path, output: Path, top_k: int) -> None:
        """At the end of every ``--resume`` run: make ``output`` from ``target``, when they differ."""


FORMATS: dict[str, Format] = {}  # name -> format, in registration order (--format's choices)
F = TypeVar("F", bound=Format)


def register(fmt: F) -> F:
    """Register ``fmt`` under its name (each format module registers its one instance)."""
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str | Format) -> Format:
    """The registered format of that name (a :class:`Format` is returned as it is)."""
    if not isinstance(name, str):
        return name
    if name not in FORMATS:
        raise UsageError(f"unknown output format {name!r} ({', '.join(FORMATS)})")
    return FORMATS[name]


def format_for(path: Path | None, explicit: str | Format | None = None) -> Format:
    """``--format`` if given, else the format whose extension ``path`` has (CSV when none has,
    or for stdout)."""
    if explicit:
        return get_format(explicit)
    suffix = path.suffix.lower() if path is not None else ""
    return next((f for f in FORMATS.values() if suffix in f.extensions), FORMATS["csv"])
