"""What the MQTT and webhook senders share: a thread that drains one target's outbox, the
delivery options, and failure episodes (one stderr line per episode, not per row)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgeclass.publish.outbox import Outbox

LINGER_S = 0.2  # a row waits at most this long for others to go with it (a round ends early at half a window)
GIVE_UP_AFTER = 3  # failed attempts in a row after which the end of a run stops waiting for a target
_SLOW_FAILURES = {"no-ack", "no-connack", "timeout"}  # each took the acknowledgement timeout


@dataclass(frozen=True)
class SendOptions:
    connect_timeout_s: float = 5.0  # TCP (and TLS) connection
    ack_timeout_s: float = 10.0  # CONNACK / PUBACK / the HTTP response
    retry_min_s: float = 0.5  # backoff between attempts: doubles up to retry_max_s
    retry_max_s: float = 5.0
    window: int = 100  # MQTT messages in flight (sent, not acknowledged); a round ends early at half of it
    batch: int = 100  # webhook rows per POST
    discovery: bool = False  # Home Assistant MQTT discovery configs
    model: str = ""  # the device model in discovery configs (the model's name)
    sw_version: str = ""
    offline_at_exit: bool = False  # MQTT: say "offline" on a clean exit (live runs), not only by last will


class Episodes:
    """Failures of one target: each failed attempt counts (``failures``); a line is said when an
    episode starts, when a new kind of failure shows in it, and when delivery works again (a
    message acknowledged)."""

    def __init__(self, name: str, say: Callable[[str], None]):
        self.name, self._say = name, say
        self.failures = 0
        self.in_episode = 0  # failed attempts in the current episode
        self.kind: str | None = None  # the current episode, None: delivering
        self.last: str | None = None  # what the current episode's last failure said
        self._said: set[str] = set()  # kinds of failure said in this episode
        self._lock = threading.Lock()

    def fail(self, kind: str, text: str) -> None:
        with self._lock:
            self.failures += 1
            self.in_episode += 1
            self.kind, self.last = kind, text
            if kind in self._said:
                return
            self._said.add(kind)
        self._say(f"publish {self.name}: {text}")

    def ok(self, pending: int) -> None:
        with self._lock:
            if self.kind is None:
                return
            self.kind, self.last, self.in_episode, self._said = None, None, 0, set()
        self._say(f"publish {self.name}: delivering again ({pending} rows pending)")


class Sender(threading.Thread):
    """Drains ``outbox`` until :meth:`stop`; subclasses implement :meth:`step` (one attempt)."""

    def __init__(self, name: str, outbox: Outbox, options: SendOptions, say: Callable[[str], None]):
        super().__init__(name=f"edgeclass-publish-{name}", daemon=True)
        self.outbox, self.options = outbox, options
        self.episodes = Episodes(name, say)
        self._stop_event = threading.Event()
        self._delay = options.retry_min_s
        self.flushing = False  # the end of the run: send everything now (MQTT: the last states)

    def run(self) -> None:
        # Not niced: a niced thread that holds the GIL is descheduled by the busy inference
        # threads, and every Python thread of the run waits for it (measured: 0.975 of the
        # images/s without --publish niced at 10, 0.99 not niced). Few rounds a second instead.
        while not self._stop_event.is_set():
            if self.step():
                self._delay = self.options.retry_min_s
            else:
                self._stop_event.wait(self._delay)
                self._delay = min(self._delay * 2, self.options.retry_max_s)
            self.outbox.upkeep()  # fsync and compaction: here, not on the run's thread
        self.finish()

    def linger(self, until: int) -> None:
        """After a round, wait ``LINGER_S`` for more rows, or until message ``until`` is queued
        (not at the end of the run): a few rounds a second, each of many rows, so the thread
        wakes (and takes the GIL) a few times a second, not once per row."""
        if not self.flushing and not self.stopping:
            self.outbox.wait(until - 1, LINGER_S)

    def step(self) -> bool:
        """One round of work; False after a failure (the thread backs off before the next)."""
        raise NotImplementedError

    def finish(self) -> None:
        """On the sender's thread, after :meth:`stop`: close the connection."""

    @property
    def settled(self) -> bool:
        """Nothing sent but unacknowledged beyond the outbox (MQTT: the retained states)."""
        return True

    @property
    def down(self) -> bool:
        """Not worth waiting for at the end of a run: failed ``GIVE_UP_AFTER`` attempts in a row
        (refused, unreachable...), or one that already took the whole acknowledgement timeout. A
        connection that worked and then broke ("lost": a restart, a message it would not take)
        does not count: it is retried until the end of the wait."""
        kind = self.episodes.kind
        if kind is None or kind == "lost":
            return False
        return self.episodes.in_episode >= (1 if kind in _SLOW_FAILURES else GIVE_UP_AFTER)

    def flush(self, timeout_s: float) -> int:
        """Wait until nothing is pending, the target is :attr:`down`, or ``timeout_s``; the pending count."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        self.flushing = True
        self.outbox.wake()
        while (self.outbox.count or not self.settled) and time.monotonic() < deadline and self.is_alive() \
                and not self.down:
            time.sleep(0.002)
        return self.outbox.count

    def stop(self, join_s: float = 2.0) -> None:
        self._stop_event.set()
        self.outbox.wake()
        if self.is_alive() and join_s > 0:
            self.join(join_s)

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()
