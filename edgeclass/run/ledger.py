"""The results ledger: where ``edgeclass run``'s rows go, behind one interface.

    ledger = open_ledger(output, fmt, top_k, resume, ...)   # checks, lock, resume journal, writer
    ledger.state                    # with --resume: what the output already holds (skips)
    ledger.append(result, key, completed)   # one row; commits finished inputs in the journal
    ledger.commit(completed, clean) # the end of a run: commit, cut, fsync, replace or rebuild
    ledger.abort()                  # after an error: keep only committed rows
    ledger.close()                  # files and lock

Where rows go:

* stdout: rows flushed one by one.
* ``-o FILE`` without ``--resume``: rows go to ``.FILE.partial`` beside it, which replaces FILE
  only when every input was processed (a stop, a kill or an error keeps the previous FILE and
  leaves the partial results beside it, said in the message).
* ``-o FILE --resume``: rows are appended to FILE; after the rows of each finished input a
  journal record commits them (:mod:`edgeclass.run.journal`, :mod:`edgeclass.run.resume`).
  Checkpoints fsync output then journal at most every ``SYNC_EVERY_S`` and at the end of every
  run (the fsync policy). Row files and the journal are both :class:`AppendFile` s.

Every row carries the run's model id (the ``model`` column), and so does its journal record.
:func:`check_outputs` is what ``run`` checks before it loads a model or reads an input.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

from edgeclass import atomic
from edgeclass.errors import OutputError, UsageError
from edgeclass.media.inputs import classify_path
from edgeclass.results import Result
from edgeclass.run import output as formats
from edgeclass.run.lock import OutputLock
from edgeclass.run.output.columns import model_text
from edgeclass.run.journal import Record, SourceKey
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


def check_outputs(output: Path | None, fmt: str | None, resume: bool, summary_json: Path | None = None) -> str:
    """Everything ``run`` will write, checked before the model is loaded or an input read;
    returns the output format (``fmt``, else from the extension)."""
    if resume and output is None:
        raise UsageError("--resume needs --output FILE")
    fmt = formats.format_for(output, fmt)
    formats.format_module(fmt)  # the parquet extra, when asked for
    if output is None and fmt == "parquet":
        raise UsageError("--format parquet needs --output FILE")
    check_output(output)
    check_output(summary_json, "--summary-json", create_parent=False)
    return fmt


def open_ledger(output: Path | None, fmt: str, top_k: int, resume: bool, stdout, event, model: str = "",
                redo_other_models: bool = False) -> Ledger:
    """The ledger of one run: ``output`` None writes to ``stdout``; ``event`` receives messages
    for the user (a taken-over lock, what resume cut or upgraded); ``model`` is the run's model
    id; ``redo_other_models`` (with ``resume``): inputs whose rows came from another model are
    classified again, their old rows superseded."""
    return Ledger(output, fmt, top_k, resume, stdout, event, model, redo_other_models)


class Ledger:
    def __init__(self, output: Path | None, fmt: str, top_k: int, resume: bool, stdout, event, model: str = "",
                 redo_other_models: bool = False):
        """``model``: the run's model id (every row's ``model`` column); ``redo_other_models``:
        with ``resume``, inputs whose rows came from another model are not done (classified
        again, their old rows superseded)."""
        self.output, self.fmt, self.top_k, self.resume = output, fmt, top_k, resume
        self.model, self._redo_other_models = model_text(model), redo_other_models
        self._event = event
        self.lock = self.writer = self.journal = None
        self.state: ResumeState | None = None
        self._pending: tuple[SourceKey, str, str] | None = None  # a video whose rows are not committed yet
        self._committed = 0  # output position of the last record
        self._rows = self._rows_committed = 0
        self._superseded: set[str] = set()
        self._target, self._target_fmt = output, fmt  # with --resume: where rows are appended
        self._last_sync = time.monotonic()
        if output is None:
            self.writer = formats.stream_writer(stdout, fmt, top_k, self.model)
            return
        try:
            self._open_file()
        except BaseException:
            self.close()  # the lock too: a library caller goes on living
            raise

    # ------------------------------------------------------------------ opening
    def _open_file(self) -> None:
        out = self.output
        check_output(out)
        formats.format_module(self.fmt)  # a missing extra fails here, before any work
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.lock = OutputLock(out).acquire()
        except OSError as exc:
            raise OutputError(f"cannot write next to {out}: {exc.strerror or exc}") from exc
        if self.lock.took_over_from:
            self._event(f"took over the lock of a run that died (pid {self.lock.took_over_from})")
        try:
            if self.resume:
                self._open_resume(out)
            else:
                self.writer = formats.open_writer(partial_path(out), self.fmt, self.top_k, model=self.model)
        except OSError as exc:
            raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc

    def _open_resume(self, out: Path) -> None:
        self._target, self._target_fmt = resume_target(out, self.fmt)
        if self._target != out and out.exists() and not self._target.exists():
            from edgeclass.run.output.parquetfmt import seed_log

            seed_log(out, self._target, self.top_k)  # a Parquet file without its log: no row is lost
        self.state, self.journal = open_resume(self._target, formats.family(self._target_fmt), self.top_k,
                                               self.model, self._redo_other_models)
        self.writer = formats.open_writer(self._target, self._target_fmt, self.top_k, at=self.state.position,
                                          model=self.model)
        self._committed = self.writer.position()
        if self.state.upgraded:
            self._event(f"resume: {self.state.upgraded} rows written before model ids now have a model column "
                        "(empty: made before model ids)")
        if self.state.cut_bytes or self.state.superseded:
            self._event(f"resume: cut {self.state.cut_bytes} bytes of torn or unfinished rows "
                        f"(their inputs are redone); removed {self.state.superseded} superseded rows")

    # ------------------------------------------------------------------ writing
    def append(self, result: Result, key: SourceKey | None, completed: set[str]) -> None:
        """Append one row; commit finished inputs in the journal (``key`` None: a live source)."""
        if self.journal is not None and key is not None and self._pending and self._pending[0] != key:
            self._commit_pending(completed)
        if self.state is not None and key is not None and key.identity in self.state.done:
            self._superseded.add(key.identity)  # classified again: its earlier rows go at the end
        try:
            self.writer.append(result)
        except BrokenPipeError:
            raise  # stdout closed by its reader (`| head`): the runner stops quietly
        except OSError as exc:
            raise self._failure(exc) from exc
        self._rows += 1
        if self.journal is None:
            self._rows_committed = self._rows
            return
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
        """The one message for a failed write, whichever file (output or journal) hit the limit."""
        where = self._target if self.journal is not None or self.output is None else partial_path(self.output)
        kept = f"the {self._rows_committed} rows written before the failure are intact in {where or 'stdout'}"
        hint = "; run again with --resume to finish" if self.journal is not None else ""
        return OutputError(f"cannot write results to {self.output or 'stdout'}: {exc.strerror or exc}; {kept}{hint}")

    # ------------------------------------------------------------------ finishing
    def commit(self, completed: set[str], clean: bool) -> str | None:
        """Commit what is complete, cut what is not, fsync; on a clean finish without --resume
        the partial file replaces the output. Returns a message for the user, if any."""
        if self.output is None:
            return None
        if self.journal is None:
            try:
                self.writer.close()
                if clean:
                    atomic.replace_file(partial_path(self.output), self.output)
                    return None
            except OSError as exc:
                raise self._failure(exc) from exc
            return (f"{self.output} was not replaced (the run did not finish); the rows of this run are in "
                    f"{partial_path(self.output)}")
        if self._pending is not None:
            self._commit_pending(completed)
        try:
            if self.writer.position() != self._committed:
                self.writer.truncate(self._committed)  # a video cut short: redone next time
            self._checkpoint()
        except OSError as exc:
            raise self._failure(exc) from exc
        if self._superseded:
            self._compact()
        if self.fmt == "parquet":  # rebuilt from its log at the end of every run
            from edgeclass.run.output.parquetfmt import build_from_log

            try:
                build_from_log(self._target, self.output, self.top_k)
            except OSError as exc:
                raise self._failure(exc) from exc
        return None

    def abort(self) -> None:
        """After an error: keep only committed rows (resume) so the files stay consistent."""
        if self.journal is not None and self.writer is not None:
            with contextlib.suppress(OSError):
                self.writer.truncate(self._committed)

    def _compact(self) -> None:
        self.writer.close()
        self.journal.close()
        try:
            removed = compact_journaled(self._target, formats.family(self._target_fmt), self.top_k)
        except OSError as exc:
            raise OutputError(f"cannot rewrite {self.output} without the rows of redone inputs: "
                              f"{exc.strerror or exc}; the next --resume run finishes it") from exc
        self._event(f"resume: removed {removed} rows of inputs classified again")

    def close(self) -> None:
        for thing in (self.writer, self.journal):
            if thing is not None:
                with contextlib.suppress(OSError):
                    thing.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def resume_target(output: Path, fmt: str) -> tuple[Path, str]:
    """The append-only file ``--resume`` writes rows to, and its format: the output itself, or
    for Parquet (not appendable) a JSON-lines log beside it, rebuilt into the output at the end."""
    if fmt == "parquet":
        from edgeclass.run.output.parquetfmt import log_path

        return log_path(output), "jsonl"
    return output, fmt
