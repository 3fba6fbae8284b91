"""``run --publish``: the run's side of :mod:`edgeclass.publish` (which knows nothing of rows,
formats or media). Here a :class:`~edgeclass.results.Result` becomes the row the output file
has, and gets the *source* it belongs to for topics and state:

* a live source (stream, camera) and a video file: itself (its name as in the ``source``
  column, credentials already masked there);
* an image file: its folder (a folder of snapshots is one camera: one state topic and one Home
  Assistant sensor per folder, not per file).

Rows are queued for publishing **before** the ledger writes them, so a kill between the two
publishes a row whose input the next ``--resume`` run classifies again (a duplicate, with a new
message id), never the reverse (a row in the output that no one was sent).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from edgeclass import __version__
from edgeclass.errors import EXIT_INPUT_FAILURES, EXIT_OK, UsageError
from edgeclass.media.inputs import classify_path
from edgeclass.publish.hub import DEFAULT_MAX_PENDING, Publishing, PublishSettings, TargetReport, summary_line
from edgeclass.publish.target import MqttTarget, parse_targets
from edgeclass.results import Result
from edgeclass.run.output.columns import header, model_text, row_values


class RunOutcome(Protocol):
    """What :func:`publish_outcome` sets on the run's summary (a :class:`~edgeclass.run.context.RunSummary`:
    this module stays below the runner that calls it)."""

    publish: list[dict]
    note: str | None
    exit_code: int


S = TypeVar("S", bound=RunOutcome)

STOPPED_WAIT_S = 0.5  # after SIGTERM / --max-runtime: acknowledgements already on their way, no more


def publish_settings(urls: Sequence[str], headers: Sequence[str] = (), discovery: bool = False,
                     max_pending: int = DEFAULT_MAX_PENDING) -> PublishSettings | None:
    """The ``--publish*`` options, checked before any work (None: not publishing)."""
    if max_pending < 1:
        raise UsageError(f"--publish-max-pending {max_pending}: give at least 1")
    if not urls:
        if headers or discovery or max_pending != DEFAULT_MAX_PENDING:
            raise UsageError("--publish-header, --publish-discovery and --publish-max-pending need --publish URL")
        return None
    settings = PublishSettings(parse_targets(list(urls), list(headers)), discovery, max_pending)
    for target in settings.targets:  # imported now (the check that it works), not on the run's clock
        module = "edgeclass.publish.mqtt" if isinstance(target, MqttTarget) else "edgeclass.publish.webhook"
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UsageError(f"--publish {target.masked()} needs {exc.name or 'its client'}: "
                             "pip install 'edgeclass[publish]'") from None
    return settings


def source_name(source: str) -> str:
    """What a row belongs to for publishing (see the module's docstring)."""
    if classify_path(source) != "image":
        return source
    return os.path.dirname(source) or "."


class RunPublisher:
    """One run's publishing: rows in, reports out."""

    def __init__(self, settings: PublishSettings, output: Path | None, top_k: int, model_id: str,
                 model_name: str, say: Callable[[str], None], live: bool = False):
        self.top_k, self.model = top_k, model_text(model_id)
        self.columns = header(top_k)
        self.wait_s = settings.options.ack_timeout_s
        self.hub = Publishing(settings, output, say, model=model_name, sw_version=__version__, offline_at_exit=live)

    def add(self, result: Result) -> None:
        """Queue one row (before the ledger writes it)."""
        row = dict(zip(self.columns, row_values(result, self.top_k, self.model)))
        self.hub.add(source_name(result.source), row)

    def stats(self) -> dict[str, dict[str, int]]:
        return self.hub.stats()

    def finish(self, stopped: bool) -> list[TargetReport]:
        """Deliver what can be (for at most the acknowledgement timeout; :data:`STOPPED_WAIT_S`
        after a stop), then close; pending rows stay in the outboxes."""
        return self.hub.finish(STOPPED_WAIT_S if stopped else self.wait_s)


def open_publisher(settings: PublishSettings | None, output: Path | None, top_k: int, inputs: Sequence[str],
                   model_id: str, model_name: str, say: Callable[[str], None]) -> RunPublisher | None:
    """The run's publisher (None without ``--publish``); opened once the output's lock is held
    (the outboxes live beside the output)."""
    if settings is None:
        return None
    live = any(classify_path(i) in ("stream", "camera") for i in inputs)
    return RunPublisher(settings, output, top_k, model_id, model_name, say, live)


def publish_outcome(summary: S, reports: list[TargetReport]) -> S:
    """The summary with the publishing reports: rows pending at the end make a run that was
    going to exit 0 exit 1, and the note says how many (also with -q)."""
    if not reports:
        return summary
    summary.publish = [r.to_dict() for r in reports]
    line = summary_line(reports)
    if line:
        summary.note = f"{summary.note}; {line}" if summary.note else line
    if any(r.pending for r in reports) and summary.exit_code == EXIT_OK:
        summary.exit_code = EXIT_INPUT_FAILURES
    return summary
