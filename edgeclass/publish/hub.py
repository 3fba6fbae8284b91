"""One run's publishing: an outbox and a sender per ``--publish`` target.

    pub = Publishing(settings, output, say, model="mobilevitv2", sw_version=__version__)
    pub.add(source_name, row)        # before the ledger commits the row: at least once
    pub.stats()                      # target -> pending, failures... (metrics, while running)
    reports = pub.finish(wait_s)     # deliver what can be within wait_s, then stop; never hangs

``row`` is one result row as the output file has it (column -> value); ``source_name`` is what
the row belongs to for topics and state (a camera, a video file, a folder of snapshots): the
run layer decides. Nothing here knows about the ledger, formats or media.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeclass.publish import topics
from edgeclass.publish.outbox import Outbox, outbox_path
from edgeclass.publish.sender import Sender, SendOptions
from edgeclass.publish.target import MqttTarget, Target

DEFAULT_MAX_PENDING = 10_000


@dataclass(frozen=True)
class PublishSettings:
    """What ``--publish``, ``--publish-discovery``, ``--publish-header`` and
    ``--publish-max-pending`` chose (targets parsed by :func:`edgeclass.publish.target.parse_targets`)."""

    targets: tuple[Target, ...]
    discovery: bool = False
    max_pending: int = DEFAULT_MAX_PENDING
    options: SendOptions = field(default_factory=SendOptions)


@dataclass(frozen=True)
class TargetReport:
    """One target at the end of a run (``--summary-json``'s ``publish`` list)."""

    target: str  # masked
    pending: int  # not delivered, kept in the outbox for the next run
    delivered: int  # this run (rows of earlier runs included)
    carried: int  # pending from earlier runs when this one started
    dropped: int  # at --publish-max-pending, oldest first
    undeliverable: int  # too large for the broker / endpoint
    failures: int  # failed attempts (connections, acknowledgements, requests)
    last_failure: str | None = None  # why delivery stopped, when it had not recovered at the end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Publishing:
    def __init__(self, settings: PublishSettings, output: Path | None, say: Callable[[str], None],
                 model: str = "", sw_version: str = "", offline_at_exit: bool = False):
        """``output``: the run's output file, beside which each target's outbox lives (None:
        stdout, outboxes in memory); ``say``: one line for the user (stderr)."""
        self.settings = settings
        self._names: dict[str, str] = {}  # source id -> source name (no credentials)
        self.senders: list[Sender] = []
        options = SendOptions(**{**asdict(settings.options), "discovery": settings.discovery, "model": model,
                                 "sw_version": sw_version, "offline_at_exit": offline_at_exit})
        try:
            for target in settings.targets:
                path = outbox_path(output, target.key) if output is not None else None
                outbox = Outbox(path, settings.max_pending, target.masked(), say)
                self.senders.append(self._sender(target, outbox, options, say))
        except BaseException:
            self.close()
            raise
        for sender in self.senders:
            sender.start()

    def _sender(self, target: Target, outbox: Outbox, options: SendOptions, say: Callable[[str], None]) -> Sender:
        if isinstance(target, MqttTarget):
            from edgeclass.publish.mqtt import MqttSender  # paho only when publishing to MQTT

            client_id = f"edgeclass-{target.key}-{os.getpid()}-{secrets.token_hex(2)}"
            return MqttSender(target, outbox, options, say, self._name, client_id)
        from edgeclass.publish.webhook import WebhookSender

        return WebhookSender(target, outbox, options, say, f"edgeclass/{options.sw_version}")

    def _name(self, sid: str) -> str:
        return self._names.get(sid, sid)

    def add(self, source_name: str, row: Mapping[str, Any]) -> None:
        """Queue one row for every target (durable in each outbox when this returns)."""
        fields = topics.result_fields(row, source_name)
        sid = fields["source_id"]
        self._names.setdefault(sid, fields["source_name"])
        for sender in self.senders:
            sender.outbox.add(sid, fields, topics.dumps)

    @property
    def pending(self) -> int:
        return sum(s.outbox.count for s in self.senders)

    def stats(self) -> dict[str, dict[str, int]]:
        """Target (masked) -> ``pending`` and ``failures`` so far (for the metrics file)."""
        return {s.episodes.name: {"pending": s.outbox.count, "failures": s.episodes.failures} for s in self.senders}

    def finish(self, wait_s: float) -> list[TargetReport]:
        """Deliver what can be delivered within ``wait_s`` (0 after a stop: SIGTERM, --max-runtime;
        a target in a failure episode is not waited for), then stop and close; the reports."""
        deadline = time.monotonic() + max(0.0, wait_s)
        for sender in self.senders:
            sender.flush(deadline - time.monotonic())
        self.close()
        return [TargetReport(s.episodes.name, s.outbox.count, s.outbox.delivered, s.outbox.carried,
                             s.outbox.dropped, s.outbox.undeliverable, s.episodes.failures, s.episodes.last)
                for s in self.senders]

    def close(self) -> None:
        """Stop the senders and close the outboxes (pending rows stay for the next run)."""
        for sender in self.senders:
            sender.stop(join_s=0)
        deadline = time.monotonic() + 2.0  # a sender in a blocking connect: not waited for longer
        for sender in self.senders:
            if sender.is_alive():
                sender.join(max(0.0, deadline - time.monotonic()))
            sender.outbox.close()


def summary_line(reports: list[TargetReport]) -> str | None:
    """One line for the run's summary when something is not delivered (None: all delivered)."""
    parts = []
    for r in reports:
        bits = [f"{r.pending} rows pending"] if r.pending else []
        bits += [f"{r.dropped} dropped at --publish-max-pending"] if r.dropped else []
        bits += [f"{r.undeliverable} undeliverable"] if r.undeliverable else []
        if bits:
            why = f" ({r.last_failure.split(';')[0]})" if r.pending and r.last_failure else ""
            parts.append(f"{r.target}: {', '.join(bits)}{why}")
    return ("publish: " + "; ".join(parts)) if parts else None
