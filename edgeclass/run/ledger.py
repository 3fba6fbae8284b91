"""The results ledger: where ``edgeclass run``'s rows go, one ledger type per mode, one protocol.

    ledger = open_ledger(output, fmt, top_k, resume, ...)   # lock, resume journal, writer
    ledger.state                    # with --resume: what the output already holds (skips)
    ledger.append(result, key, completed)   # one row; commits finished inputs in the journal
    ledger.commit(completed, clean) # the end of a run: commit, cut, fsync, replace or rebuild
    ledger.abort()                  # after an error: keep only committed rows
    ledger.close()                  # files and lock

Where rows go (the three modes):

* :class:`StreamLedger`, stdout: rows flushed one by one.
* :class:`ReplaceLedger`, ``-o FILE`` without ``--resume``: rows go to ``.FILE.partial`` beside
  it, which replaces FILE only when every input was processed (a stop, a kill or an error keeps
  the previous FILE and leaves the partial results beside it, said in the message).
* :class:`JournaledLedger`, ``-o FILE --resume``: rows are appended to the format's journaled
  target (FILE, or for Parquet a JSON-lines log beside it); after the rows of each finished input
  a journal record commits them (:mod:`edgeclass.run.journal`, :mod:`edgeclass.run.resume`).
  Checkpoints fsync output then journal at most every ``SYNC_EVERY_S`` and at the end of every
  run (the fsync policy). Row files and the journal are both :class:`AppendFile` s.

Every row carries the run's model id (the ``model`` column), and so does its journal record.
:func:`check_outputs` is what ``run`` checks before it loads a model or reads an input (called
by :func:`edgeclass.run.plan.plan_run`; the ledger does not check again).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from edgeclass import atomic
from edgeclass.errors import OutputError, UsageError
from edgeclass.media.inputs import classify_path
from edgeclass.results import Result
from edgeclass.run.journal import Journal, Record, SourceKey
from edgeclass.run.lock import OutputLock
from edgeclass.run.output import Format, RowWriter, format_for, get_format
from edgeclass.run.output.bytefile import ByteRowWriter
from edgeclass.run.output.columns import model_text
from edgeclass.run.resume import ResumeState, compact_journaled, open_resume

SYNC_EVERY_S = float(os.environ.get("EDGECLASS_SYNC_EVERY_S", "10"))  # seconds between checkpoints


def partial_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.partial")


def check_output(path: Path | None, what: str = "--output", create_parent: bool = True) -> None:
    """Fail before any work when ``path`` cannot be written: a folder, a parent that cannot be
    made or written (tried for real: a probe file, since root passes every permission check)."""
    if path is None:
        return
    if path.is_dir():
        raise OutputError(f"{what} {path} is a directory: give a file name")
    parent = path.parent
    try:
        if create_parent:
            parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent, prefix=f".{path.name}.probe"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write {what} {path}: permission denied")


def check_outputs(output: Path | None, fmt: str | Format | None, resume: bool,
                  summary_json: Path | None = None) -> Format:
    """Everything ``run`` will write, checked before the model is loaded or an input read;
    returns the output format (``fmt``, else from the extension), resolved once."""
    if resume and output is None:
        raise UsageError("--resume needs --output FILE")
    fmt = format_for(output, fmt)
    fmt.require()  # the parquet extra, when asked for
    if output is None and not fmt.streams:
        raise UsageError(f"--format {fmt.name} needs --output FILE")
    check_output(output)
    check_output(summary_json, "--summary-json", create_parent=False)
    return fmt


class Ledger(Protocol):
    """Where a run's rows go (one implementation per mode)."""

    @property
    def state(self) -> ResumeState | None:
        """With --resume: what the output already holds."""

    def append(self, result: Result, key: SourceKey | None, completed: set[str]) -> None:
        """Write one row (``key``: the input's resume key; None: a live source)."""

    def commit(self, completed: set[str], clean: bool) -> str | None:
        """The end of a run; returns a message for the user, if any."""

    def abort(self) -> None:
        """After an error: keep the files consistent."""

    def close(self) -> None: ...


def open_ledger(output: Path | None, fmt: Format | str, top_k: int, resume: bool, stdout: IO[str] | None,
                event: Callable[[str], None], model: str = "", redo_other_models: bool = False) -> Ledger:
    """The ledger of one run: ``output`` None writes to ``stdout``; ``event`` receives messages
    for the user (a taken-over lock, what resume cut or upgraded); ``model`` is the run's model
    id; ``redo_other_models`` (with ``resume``): inputs whose rows came from another model are
    classified again, their old rows superseded."""
    fmt, text = get_format(fmt), model_text(model)
    if output is None:
        return StreamLedger(fmt.stream_writer(stdout if stdout is not None else sys.stdout, top_k, text))
    lock = _lock(output, event)
    try:
        if not resume:
            return ReplaceLedger(output, fmt, top_k, text, lock)
        return JournaledLedger(output, fmt, top_k, text, lock, event, redo_other_models)
    except BaseException:
        lock.release()  # a library caller goes on living
        raise


def _lock(output: Path, event: Callable[[str], None]) -> OutputLock:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        lock = OutputLock(output).acquire()
    except OSError as exc:
        raise OutputError(f"cannot write next to {output}: {exc.strerror or exc}") from exc
    if lock.took_over_from:
        event(f"took over the lock of a run that died (pid {lock.took_over_from})")
    return lock


def _failure(exc: OSError, output: Path | None, rows: int, where: Path | None, resumable: bool = False) -> OutputError:
    """The one message for a failed write, whichever file (output or journal) hit the limit."""
    kept = f"the {rows} rows written before the failure are intact in {where or 'stdout'}"
    hint = "; run again with --resume to finish" if resumable else ""
    return OutputError(f"cannot write results to {output or 'stdout'}: {exc.strerror or exc}; {kept}{hint}")


class StreamLedger:
    """stdout: rows flushed one by one; nothing to commit."""

    state: ResumeState | None = None

    def __init__(self, writer: RowWriter):
        self.writer, self._rows = writer, 0

    def append(self, result: Result, key: SourceKey | None, completed: set[str]) -> None:
        try:
            self.writer.append(result)
        except BrokenPipeError:
            raise  # stdout closed by its reader (`| head`): the runner stops quietly
        except OSError as exc:
            raise _failure(exc, None, self._rows, None) from exc
        self._rows += 1

    def commit(self, completed: set[str], clean: bool) -> str | None:
        return None

    def abort(self) -> None:
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.writer.close()


class ReplaceLedger:
    """``-o FILE``: rows into ``.FILE.partial``, which replaces FILE on a clean finish."""

    state: ResumeState | None = None

    def __init__(self, output: Path, fmt: Format, top_k: int, model: str, lock: OutputLock):
        self.output, self.lock, self._rows = output, lock, 0
        try:
            self.writer = fmt.open_writer(partial_path(output), top_k, model)
        except OSError as exc:
            raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from exc

    def append(self, result: Result, key: SourceKey | None, completed: set[str]) -> None:
        try:
            self.writer.append(result)
        except OSError as exc:
            raise _failure(exc, self.output, self._rows, partial_path(self.output)) from exc
        self._rows += 1

    def commit(self, completed: set[str], clean: bool) -> str | None:
        try:
            self.writer.close()
            if clean:
                atomic.replace_file(partial_path(self.output), self.output)
                return None
        except OSError as exc:
            raise _failure(exc, self.output, self._rows, partial_path(self.output)) from exc
        return (f"{self.output} was not replaced (the run did not finish); the rows of this run are in "
                f"{partial_path(self.output)}")

    def abort(self) -> None:
        return None  # the partial file is left beside the output, the output untouched

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.writer.close()
        self.lock.release()


class JournaledLedger:
    """``-o FILE --resume``: rows appended to the format's journaled target, each finished input
    committed by a journal record; superseded rows compacted away at the end."""

    def __init__(self, output: Path, fmt: Format, top_k: int, model: str, lock: OutputLock,
                 event: Callable[[str], None], redo_other_models: bool = False):
        self.output, self.fmt, self.top_k, self.model, self.lock = output, fmt, top_k, model, lock
        self._event = event
        self._pending: tuple[SourceKey, str, str] | None = None  # a video whose rows are not committed yet
        self._committed = 0  # output position of the last record
        self._rows = self._rows_committed = 0
        self._superseded: set[str] = set()
        self._last_sync = time.monotonic()
        self.target, self.target_fmt = fmt.journaled(output)  # the output, or a log beside it
        self.state, self.journal, self.writer = self._open(redo_other_models)
        self._committed = self.writer.position()
        self._tell_what_resume_did()

    def _open(self, redo_other_models: bool) -> tuple[ResumeState, Journal, ByteRowWriter]:
        journal = None
        try:
            self.fmt.before_resume(self.output, self.target, self.top_k)
            state, journal = open_resume(self.target, self.target_fmt, self.top_k, self.model, redo_other_models)
            return state, journal, self.target_fmt.open_appender(self.target, self.top_k, state.position, self.model)
        except BaseException as exc:
            if journal is not None:
                with contextlib.suppress(OSError):
                    journal.close()
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write {self.output}: {exc.strerror or exc}") from exc
            raise

    def _tell_what_resume_did(self) -> None:
        if self.state.upgraded:
            self._event(f"resume: {self.state.upgraded} rows written before model ids now have a model column "
                        "(empty: made before model ids)")
        if self.state.cut_bytes or self.state.superseded:
            self._event(f"resume: cut {self.state.cut_bytes} bytes of torn or unfinished rows "
                        f"(their inputs are redone); removed {self.state.superseded} superseded rows")

    # ------------------------------------------------------------------ writing
    def append(self, result: Result, key: SourceKey | None, completed: set[str]) -> None:
        """Append one row; commit finished inputs in the journal (``key`` None: a live source)."""
        if key is not None and self._pending and self._pending[0] != key:
            self._commit_pending(completed)
        if key is not None and key.identity in self.state.done:
            self._superseded.add(key.identity)  # classified again: its earlier rows go at the end
        try:
            self.writer.append(result)
        except OSError as exc:
            raise self._failure(exc) from exc
        self._rows += 1
        if key is None:
            if self._pending is None:
                self._add(Record("L", self.writer.position()))
        elif classify_path(result.source) == "video":
            status = result.status.value if self._pending is None else "ok"
            self._pending = (key, status, result.source)
        else:
            self._done(key, result.status.value)
        if time.monotonic() - self._last_sync >= SYNC_EVERY_S:
            self._checkpoint()

    def _commit_pending(self, completed: set[str]) -> None:
        if self._pending is None:
            return
        key, status, source = self._pending
        self._pending = None
        if source in completed:  # read to the end (a stopped video is redone next time)
            self._done(key, status)

    def _done(self, key: SourceKey, status: str) -> None:
        self._add(Record("D", self.writer.position(), key, status, self.model))

    def _add(self, record: Record) -> None:
        try:
            self.journal.add(record)
        except OSError as exc:
            raise self._failure(exc) from exc
        self._committed = record.pos
        self._rows_committed = self._rows

    def _checkpoint(self) -> None:
        try:
            self.writer.sync()  # the output first: a journal record never points at unsynced rows
            self.journal.add(Record("S", self._committed))
            self.journal.sync()
        except OSError as exc:
            raise self._failure(exc) from exc
        self._last_sync = time.monotonic()

    def _failure(self, exc: OSError) -> OutputError:
        return _failure(exc, self.output, self._rows_committed, self.target, resumable=True)

    # ------------------------------------------------------------------ finishing
    def commit(self, completed: set[str], clean: bool) -> str | None:
        """Commit what is complete, cut what is not, fsync; compact superseded rows; let the
        format make the output from its target (Parquet: rebuilt from its log, every run)."""
        if self._pending is not None:
            self._commit_pending(completed)
        try:
            if self.writer.position() != self._committed:
                self.writer.truncate(self._committed)  # a video cut short: redone next time
            if self.state.folders is not None:  # the folders this run listed (run/folders.py)
                for folder in self.state.folders.to_write(clean):
                    self.journal.add(Record("F", self._committed, folder=folder))
            self._checkpoint()
        except OSError as exc:
            raise self._failure(exc) from exc
        if self._superseded:
            self._compact()
        try:
            self.fmt.after_resume(self.target, self.output, self.top_k)
        except OSError as exc:
            raise self._failure(exc) from exc
        return None

    def abort(self) -> None:
        """After an error: keep only committed rows so the files stay consistent."""
        with contextlib.suppress(OSError):
            self.writer.truncate(self._committed)

    def _compact(self) -> None:
        self.writer.close()
        self.journal.close()
        try:
            removed = compact_journaled(self.target, self.target_fmt, self.top_k)
        except OSError as exc:
            raise OutputError(f"cannot rewrite {self.output} without the rows of redone inputs: "
                              f"{exc.strerror or exc}; the next --resume run finishes it") from exc
        self._event(f"resume: removed {removed} rows of inputs classified again")

    def close(self) -> None:
        for thing in (self.writer, self.journal):
            with contextlib.suppress(OSError):
                thing.close()
        self.lock.release()
