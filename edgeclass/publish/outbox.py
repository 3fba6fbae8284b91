"""The outbox: one publish target's rows that are not delivered yet, durable across kill -9.
The file format is written and read only in this module.

``<output>.outbox-<target key>`` (beside the run's output; in memory only when the run writes
to stdout) is append-only text (UTF-8): a first line ``edgeclass-outbox 1``, then one
tab-separated record per line:

* ``M <id> <source id> <json>``: a message to deliver. ``id`` is the message id (1, 2, 3...
  per target, never reused: after a compaction ``N`` carries the count on); ``json`` is the
  message body on one line (it holds ``"id"`` too);
* ``A <id>``: delivered (the broker's PUBACK, or a 2xx for the webhook batch holding it);
* ``U <id> <reason>``: undeliverable (too large for the broker): never sent again;
* ``X <id>``: dropped at ``--publish-max-pending`` (the oldest first; counted and said);
* ``N <next id>``: the next message id (the first record after a compaction).

Each record is one ``write`` at the end of the file's intact part; a torn last line (a kill in
the middle of a write) is cut off when the file is opened. Records are fsynced at most every
``EDGECLASS_SYNC_EVERY_S`` seconds (10, the resume journal's policy) and at close: a kill -9
loses nothing (the data is in the page cache), a power cut at most that window. When the
delivered and dropped records outnumber the pending ones (beyond ``COMPACT_MIN``), and when it is
opened, the file is rewritten to the pending messages alone with
:func:`edgeclass.atomic.write_bytes` (a kill during it leaves the old file or the new one); at
close it is only fsynced (the end of a run does not wait for a rewrite). Pending messages are
bounded (``max_pending``), so the file is too.

The run's thread (:meth:`Outbox.add`) only encodes and writes its record: the fsyncs and the
rewrites are the sender's (:meth:`Outbox.done`, :meth:`Outbox.upkeep`), off the classifier's path.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeclass import atomic
from edgeclass.errors import OutputError

MAGIC = "edgeclass-outbox 1"
SYNC_EVERY_S = float(os.environ.get("EDGECLASS_SYNC_EVERY_S", "10"))
COMPACT_MIN = 1000  # garbage records tolerated before a rewrite, whatever the pending count


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    source_id: str
    body: str  # JSON text, one line

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = json.loads(self.body)
        return fields


def outbox_path(output: Path, key: str) -> Path:
    return output.with_name(f"{output.name}.outbox-{key}")


def read_outbox(path: Path) -> tuple[dict[int, Message], int, int]:
    """The pending messages of an outbox file (in id order), its next id, and the byte length
    of its intact part (a torn last line is not)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, 1, 0
    lines = data.split(b"\n")
    if lines[0].decode("utf-8", "replace") != MAGIC:
        raise OutputError(f"{path} is not an edgeclass outbox (or from another version): move it away")
    pending: dict[int, Message] = {}
    next_id, good = 1, len(lines[0]) + 1
    for raw in lines[1:-1]:  # the last piece is "" or a torn line
        parts = raw.decode("utf-8", "replace").split("\t", 3)
        try:
            kind, mid = parts[0], int(parts[1])
        except (IndexError, ValueError):
            break
        if kind == "M" and len(parts) == 4:
            pending[mid] = Message(mid, parts[2], parts[3])
            next_id = max(next_id, mid + 1)
        elif kind in ("A", "X", "U"):
            pending.pop(mid, None)
        elif kind == "N":
            next_id = max(next_id, mid)
        else:
            break
        good += len(raw) + 1
    return dict(sorted(pending.items())), next_id, good


class Outbox:
    """The pending messages of one target. Thread-safe: the run adds, the sender takes and
    acknowledges; :meth:`wait` lets the sender sleep until there is something to send."""

    def __init__(self, path: Path | None, max_pending: int, name: str,
                 say: Callable[[str], None], sync_every_s: float = SYNC_EVERY_S):
        """``path`` None: in memory only; ``name``: the target, masked, for messages."""
        self.path, self.max_pending, self.name, self._say = path, max(1, max_pending), name, say
        self._sync_every_s, self._last_sync = sync_every_s, time.monotonic()
        self._cond = threading.Condition()
        self._fd: int | None = None
        self._at = 0  # the end of the file's intact part (where the next record goes)
        self._garbage = 0
        self.dropped = self.undeliverable = self.delivered = 0  # this run
        self._dropping = self._said_undeliverable = self._woken = False
        self._pending: dict[int, Message] = {}
        self._next = 1
        self._wanted: int | None = None  # a sender waits for a message with an id above this (None: none waits)
        if path is not None:
            self._open(path)
        self.carried = len(self._pending)  # pending from earlier runs, sent first

    def _open(self, path: Path) -> None:
        """Read what an earlier run left, then start the file afresh with its pending messages
        (this also cuts a torn last line and the records of delivered ones)."""
        atomic.remove_stale_temps(path.parent, ("tmp",))
        self._pending, self._next, _ = read_outbox(path)
        try:
            self._rewrite()
        except OSError as exc:
            raise OutputError(f"cannot write the publish outbox {path}: {exc.strerror or exc}") from exc

    # ------------------------------------------------------------------ the run's side
    def add(self, source_id: str, fields: dict[str, Any], dumps: Callable[[dict[str, Any]], str]) -> Message:
        """Queue one message (its id given here); the oldest are dropped beyond ``max_pending``."""
        with self._cond:
            msg = Message(self._next, source_id, dumps({"id": self._next, **fields}))
            self._next += 1
            self._pending[msg.id] = msg
            self._record(f"M\t{msg.id}\t{source_id}\t{msg.body}\n", upkeep=False)
            while len(self._pending) > self.max_pending:
                self._drop_oldest()
            if self._wanted is not None and msg.id > self._wanted:  # not a wake-up per row
                self._cond.notify_all()
            return msg

    def _drop_oldest(self) -> None:
        oldest = next(iter(self._pending))
        del self._pending[oldest]
        self._record(f"X\t{oldest}\n", garbage=2, upkeep=False)
        self.dropped += 1
        if not self._dropping:
            self._dropping = True
            self._say(f"publish {self.name}: {self.max_pending} rows pending (--publish-max-pending): dropping "
                      "the oldest, counted in the summary (the output file keeps every row)")

    # ------------------------------------------------------------------ the sender's side
    def pending(self, after: int = 0, limit: int = 100) -> list[Message]:
        """Up to ``limit`` pending messages with an id above ``after``, oldest first."""
        with self._cond:
            if not self._pending:
                return []
            out: list[Message] = []
            mid = max(after + 1, next(iter(self._pending)))
            while mid < self._next and len(out) < limit:
                msg = self._pending.get(mid)
                if msg is not None:
                    out.append(msg)
                mid += 1
            return out

    def wait(self, after: int, timeout: float) -> None:
        """Sleep until a message with an id above ``after`` is pending (or ``timeout``)."""
        with self._cond:
            self._wanted = after
            self._cond.wait_for(lambda: self._woken or (self._next - 1 > after and bool(self._pending)), timeout)
            self._woken, self._wanted = False, None

    def wake(self) -> None:
        """End a :meth:`wait` now (the sender is stopping)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def done(self, ids: list[int], reason: str | None = None) -> None:
        """``ids`` delivered (``reason`` None), or undeliverable for ``reason`` (said, counted)."""
        with self._cond:
            gone = [mid for mid in ids if self._pending.pop(mid, None) is not None]  # not acknowledged twice
            if gone and reason is None:
                self.delivered += len(gone)
                self._record("".join(f"A\t{mid}\n" for mid in gone), garbage=2 * len(gone))
            elif gone:
                self.undeliverable += len(gone)
                self._record("".join(f"U\t{mid}\t{reason}\n" for mid in gone), garbage=2 * len(gone))
                if not self._said_undeliverable:  # the first one said; the rest counted in the summary
                    self._said_undeliverable = True
                    self._say(f"publish {self.name}: message {gone[0]} is undeliverable ({reason}); the others "
                              "go on (undeliverable rows are counted in the summary)")
            if len(self._pending) < self.max_pending // 2:
                self._dropping = False
            self._cond.notify_all()

    @property
    def count(self) -> int:
        with self._cond:
            return len(self._pending)

    # ------------------------------------------------------------------ the file
    def _record(self, line: str, garbage: int = 0, upkeep: bool = True) -> None:
        """Append one record (called with the lock held), then (``upkeep``: on the sender's
        thread) compact or fsync when due; an outbox that cannot be written goes on in memory,
        said once."""
        self._garbage += garbage
        if self._fd is None:
            return
        data = line.encode("utf-8", "backslashreplace")
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError:
                os.ftruncate(self._fd, self._at)
                os.lseek(self._fd, self._at, os.SEEK_SET)
                raise
            self._at += len(data)
            if upkeep:
                self._upkeep()
        except OSError as exc:
            self._lose_file(exc)

    def _upkeep(self) -> None:
        """Compact when the garbage outnumbers the pending messages, else fsync when due (lock held)."""
        if self._fd is None:
            return
        if self._garbage > max(COMPACT_MIN, 2 * len(self._pending)):
            self._rewrite()
        elif time.monotonic() - self._last_sync >= self._sync_every_s:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def upkeep(self) -> None:
        """The sender's periodic care: what :meth:`add` leaves (fsync, compaction of dropped rows)."""
        with self._cond:
            try:
                self._upkeep()
            except OSError as exc:
                self._lose_file(exc)

    def _rewrite(self) -> None:
        """The file holding only the pending messages (atomic: a kill leaves old or new)."""
        path = self.path
        assert path is not None  # only a file outbox is rewritten
        lines = [f"{MAGIC}\n", f"N\t{self._next}\n"]
        lines += [f"M\t{m.id}\t{m.source_id}\t{m.body}\n" for m in self._pending.values()]
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        atomic.write_bytes(path, "".join(lines).encode("utf-8", "backslashreplace"))
        self._fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        self._at = os.lseek(self._fd, 0, os.SEEK_END)
        self._garbage, self._last_sync = 0, time.monotonic()

    def _lose_file(self, exc: OSError) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        self._say(f"publish {self.name}: cannot write the outbox {self.path} ({exc.strerror or exc}): "
                  "pending rows are kept in memory only for the rest of this run")

    def sync(self) -> None:
        with self._cond:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    self._lose_file(exc)

    def close(self) -> None:
        """Compact when due, else fsync, and close; pending messages stay in the file for the
        next run (which compacts it when it opens it)."""
        with self._cond:
            if self._fd is None:
                return
            try:
                if self._garbage > max(COMPACT_MIN, 2 * len(self._pending)):
                    self._rewrite()
                else:
                    os.fsync(self._fd)
            except OSError as exc:
                self._lose_file(exc)
                return
            os.close(self._fd)
            self._fd = None
