"""``run --publish URL``: where rows are published, parsed and checked before any work.

    mqtt://[user[:password]@]host[:port]/PREFIX    MQTT over TCP (port 1883 when not given)
    mqtts://[user[:password]@]host[:port]/PREFIX   MQTT over TLS (port 8883), the system's CA store
    https://host[:port]/path                       a webhook: batches of rows POSTed as JSON
    http://127.0.0.1[:port]/path                   a webhook on this box only (loopback, plain HTTP)

Rules (each broken one is a :class:`UsageError`, exit 2, before a model is opened):

* an unknown scheme, no host, a port given but empty or not a number 1-65535 (``host:/x``);
* MQTT: PREFIX is one or more topic levels without ``+``, ``#``, empty levels or a leading
  ``$``; it defaults to ``edgeclass`` when the path is empty. A query or fragment is refused;
* ``http://`` to anything but a loopback address (headers may carry a token: use https).

Credentials: the URL's ``user:password`` (percent-encoded as in any URL), or, when the URL
names a user without a password, the environment variable ``EDGECLASS_PUBLISH_PASSWORD``
(keeps the password out of ``ps`` and crontabs). They are never printed: :meth:`masked` is the
form for logs, rows, metrics and ``--summary-json`` (``user:***@``; query values ``***``), and
the dataclasses keep secrets out of their ``repr``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit

from edgeclass.errors import UsageError

PASSWORD_ENV = "EDGECLASS_PUBLISH_PASSWORD"
DEFAULT_PREFIX = "edgeclass"
MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
HTTP_PORTS = {"http": 80, "https": 443}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token


@dataclass(frozen=True)
class MqttTarget:
    """An MQTT broker and the topic prefix under which rows go."""

    host: str
    port: int
    prefix: str
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def masked(self) -> str:
        user = ""
        if self.username is not None:
            user = f"{self.username}:***@" if self.password is not None else f"{self.username}@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{_host_port(self.host, self.port)}/{self.prefix}"

    @property
    def key(self) -> str:
        """8 hex digits naming this target's outbox (the masked URL: a new password keeps it)."""
        return hashlib.sha256(self.masked().encode()).hexdigest()[:8]


@dataclass(frozen=True)
class WebhookTarget:
    """An HTTP(S) endpoint that receives batches of rows; ``headers`` are sent, never printed."""

    url: str = field(repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def masked(self) -> str:
        return _mask_url(self.url)

    @property
    def key(self) -> str:
        return hashlib.sha256(self.masked().encode()).hexdigest()[:8]


Target = MqttTarget | WebhookTarget


def parse_targets(urls: Sequence[str], headers: Sequence[str] = (),
                  env: Mapping[str, str] | None = None) -> tuple[Target, ...]:
    """Every ``--publish`` URL, checked; ``headers`` (``--publish-header``) go to the webhooks."""
    env = os.environ if env is None else env
    parsed_headers = tuple(parse_header(h) for h in headers)
    targets = tuple(parse_target(u, parsed_headers, env) for u in urls)
    if parsed_headers and not any(isinstance(t, WebhookTarget) for t in targets):
        raise UsageError("--publish-header is for webhooks (--publish https://...): no webhook given")
    keys = [t.key for t in targets]
    if len(set(keys)) != len(keys):
        raise UsageError("--publish: the same target is given twice")
    return targets


def parse_target(url: str, headers: tuple[tuple[str, str], ...] = (),
                 env: Mapping[str, str] | None = None) -> Target:
    """One ``--publish`` URL (a :class:`UsageError` names the URL masked, never its secrets)."""
    env = os.environ if env is None else env
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--publish {_mask_url(url)}: not a valid URL ({_reason(exc)})") from None
    scheme = parts.scheme.lower()
    if scheme not in MQTT_PORTS and scheme not in HTTP_PORTS:
        raise UsageError(f"--publish {_mask_url(url)}: unknown scheme {scheme or '(none)'!r} "
                         "(mqtt://, mqtts://, https://, or http:// to this box)")
    if not parts.hostname:
        raise UsageError(f"--publish {_mask_url(url)}: no host")
    if port is None and parts.netloc.endswith(":"):
        raise UsageError(f"--publish {_mask_url(url)}: missing port after ':'")
    if port == 0:
        raise UsageError(f"--publish {_mask_url(url)}: port 0 is not a port")
    if scheme in MQTT_PORTS:
        return _mqtt(parts, scheme, port, env, url)
    return _webhook(parts, scheme, headers, url)


def _mqtt(parts: SplitResult, scheme: str, port: int | None, env: Mapping[str, str], url: str) -> MqttTarget:
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise UsageError(f"--publish {_mask_url(url)}: an MQTT URL takes no '?' or '#' (the path is the topic "
                         "prefix, without wildcards; percent-encode them in a password)")
    prefix = unquote(parts.path).strip("/") or DEFAULT_PREFIX
    check_prefix(prefix, _mask_url(url))
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and password is None:
        password = env.get(PASSWORD_ENV) or None
    return MqttTarget(parts.hostname or "", port or MQTT_PORTS[scheme], prefix, scheme == "mqtts", username, password)


def check_prefix(prefix: str, shown: str) -> None:
    """A topic prefix is levels of text: no wildcards, no empty level, not a ``$SYS`` topic."""
    bad = [c for c in "+#\0" if c in prefix]
    if bad or "//" in prefix or prefix.startswith("$") or len(prefix.encode()) > 1000:
        raise UsageError(f"--publish {shown}: the topic prefix {prefix!r} must be topic levels "
                         "without '+', '#', empty levels or a leading '$'")


def _webhook(parts: SplitResult, scheme: str, headers: tuple[tuple[str, str], ...], url: str) -> WebhookTarget:
    if scheme == "http" and not _loopback(parts.hostname or ""):
        raise UsageError(f"--publish {_mask_url(url)}: plain http:// only to this box (127.0.0.1, ::1, "
                         "localhost); use https:// for another host")
    if parts.fragment:
        raise UsageError(f"--publish {_mask_url(url)}: a webhook URL takes no '#' part")
    return WebhookTarget(url.strip(), headers)


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` (``--publish-header``); the value is never shown in a message."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _HEADER_NAME.match(name) or not value or any(c in value for c in "\r\n\0"):
        raise UsageError(f"--publish-header {name[:40]!r}...: give 'Name: value' (one line, a header name "
                         "without spaces)")
    return name, value


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _mask_url(url: str) -> str:
    """``url`` without secrets: ``user:***@`` for a password, ``***`` for every query value."""
    if "://" not in url:
        return re.sub(r":[^@/]*@", ":***@", url.strip())
    try:
        parts = urlsplit(url.strip())
        query = urlencode([(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    except ValueError:
        return "(an unparsable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    out = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{out}?{query}" if parts.query else out


def _reason(exc: ValueError) -> str:
    text = str(exc)
    return "port out of range or not a number" if "port" in text.lower() else "unparsable"
