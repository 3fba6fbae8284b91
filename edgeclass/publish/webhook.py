"""Rows to a webhook: batches POSTed as JSON with httpx, from one target's outbox.

Body: ``{"messages": [<result message>, ...]}``, the oldest pending first, at most ``batch`` per
request (each message as on MQTT: the row's columns, ``id``, ``source_id``...). A 2xx marks the
whole batch delivered. Anything else is retried, the same batch first (so order holds), after a
backoff that doubles from ``retry_min_s`` up to ``retry_max_s``: connection failures, timeouts,
5xx, 408, 429, and also 401/403/404 (said once: the endpoint or its token may be fixed while the
rows wait). 413 halves the batch; a single message refused with 413 is undeliverable. The
``--publish-header`` headers are sent with every request and never printed.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from edgeclass.publish.outbox import Outbox
from edgeclass.publish.sender import Sender, SendOptions
from edgeclass.publish.target import WebhookTarget


class WebhookSender(Sender):
    def __init__(self, target: WebhookTarget, outbox: Outbox, options: SendOptions, say: Callable[[str], None],
                 user_agent: str = "edgeclass"):
        super().__init__(target.masked(), outbox, options, say)
        self.target = target
        self._batch = max(1, options.batch)
        headers = {"Content-Type": "application/json", "User-Agent": user_agent, **dict(target.headers)}
        timeout = httpx.Timeout(options.ack_timeout_s, connect=options.connect_timeout_s)
        self.client = httpx.Client(headers=headers, timeout=timeout, follow_redirects=False)

    def step(self) -> bool:
        batch = self.outbox.pending(0, self._batch)
        if not batch:
            self.outbox.wait(0, 0.5)
            return True
        body = '{"messages":[' + ",".join(m.body for m in batch) + "]}"
        try:
            response = self.client.post(self.target.url, content=body.encode("utf-8", "backslashreplace"))
        except httpx.TimeoutException:
            self.episodes.fail("timeout", f"no answer within {self.options.ack_timeout_s:g} s; rows stay pending, "
                                          "retrying with backoff")
            return False
        except httpx.HTTPError as exc:
            kind = "tls" if "SSL" in str(exc) or "certificate" in str(exc) else "unreachable"
            what = "TLS failed" if kind == "tls" else "unreachable"
            self.episodes.fail(kind, f"{what} ({_why(exc)}); rows wait in the outbox, retrying with backoff")
            return False
        return self._answer(response.status_code, [m.id for m in batch])

    def _answer(self, status: int, ids: list[int]) -> bool:
        if 200 <= status < 300:
            self.outbox.done(ids)
            self.episodes.ok(self.outbox.count)
            return True
        if status == 413:
            if len(ids) > 1:
                self._batch = max(1, len(ids) // 2)
                return True
            self.outbox.done(ids, "HTTP 413: too large for the endpoint")
            return True
        kind = "refused" if status in (401, 403) else f"http-{status}"
        hint = " (check --publish-header)" if kind == "refused" else ""
        self.episodes.fail(kind, f"the endpoint answered HTTP {status}{hint}; rows stay pending, retrying with backoff")
        return False

    def finish(self) -> None:
        self.client.close()


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
