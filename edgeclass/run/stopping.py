"""Graceful stops: SIGTERM/SIGINT and ``--max-runtime`` set one event the pipeline watches."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from collections.abc import Iterator

from edgeclass.errors import EXIT_MAX_RUNTIME


@dataclass
class StopState:
    event: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None  # "SIGTERM", "SIGINT" or "max-runtime"
    exit_code: int | None = None

    def stop(self, reason: str, exit_code: int) -> None:
        if not self.event.is_set():
            self.reason, self.exit_code = reason, exit_code
            self.event.set()


@contextmanager
def graceful_stop(max_runtime: float | None = None) -> Iterator[StopState]:
    """Install SIGTERM/SIGINT handlers (main thread only) and a runtime timer; restore on exit.

    The first signal asks for a clean stop (no new inputs, in-flight work finished, output
    flushed); a second SIGINT raises KeyboardInterrupt as usual.
    """
    state = StopState()
    previous = {}

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if state.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        state.stop(name, 128 + signum)

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
        # a file-size limit must surface as an error on write, not kill the process
        if hasattr(signal, "SIGXFSZ"):
            previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    timer = None
    if max_runtime is not None:
        timer = threading.Timer(max_runtime, state.stop, ("max-runtime", EXIT_MAX_RUNTIME))
        timer.daemon = True
        timer.start()
    try:
        yield state
    finally:
        if timer is not None:
            timer.cancel()
        for sig, old in previous.items():
            signal.signal(sig, old)
