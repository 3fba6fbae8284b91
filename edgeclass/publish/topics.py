"""What is published where: source ids, topic names, and the JSON of results, state and Home
Assistant discovery. Pure functions (no network, no files).

**Source id** (one per *source*: a camera, a video file, a folder of snapshots; the run layer
says what the source of a row is): ``<slug>-<hash>``, where ``slug`` is the source's name with
credentials removed, lower-cased, every run of characters outside ``[a-z0-9]`` turned into one
``_``, and its last 40 characters kept (the readable end: ``cam1``, ``front_door``), and ``hash``
is 8 hex digits of SHA-256 over that same credential-free name. Stable across runs and boxes,
readable, and only ``[a-z0-9_-]``: safe as an MQTT topic level (no ``+``, ``#``, ``/``) and as a
Home Assistant ``node_id``/``object_id``. Example: ``rtsp://u:pw@10.0.0.5/cam1`` ->
``rtsp_10_0_0_5_cam1-3f09c2d1``.

**Topics** under the target's PREFIX:

* ``PREFIX/<source id>/result``: every row (QoS 1, not retained): :func:`result_fields` plus
  ``id``, the message id the outbox gives it (increasing per target, never reused: consumers
  drop duplicates by it);
* ``PREFIX/<source id>/state``: retained, the source's latest row in short (:func:`state_payload`);
* ``PREFIX/status``: retained ``online`` / ``offline`` (the client's last will says ``offline``);
* ``homeassistant/sensor/<node id>/<source id>/config``: Home Assistant MQTT discovery
  (:func:`discovery_config`), retained; an empty retained payload removes the entity.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DISCOVERY_PREFIX = "homeassistant"  # Home Assistant's default discovery_prefix
ONLINE, OFFLINE = "online", "offline"
_SLUG_RUN = re.compile(r"[^a-z0-9]+")
SLUG_CHARS = 40
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)  # made once, not per row
_JSON_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def without_credentials(name: str) -> str:
    """A URL's ``user:password@`` removed (other names are returned as they are)."""
    if "://" not in name or "@" not in name:
        return name
    try:
        parts = urlsplit(name)
    except ValueError:
        return name
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def slug(text: str, keep: int = SLUG_CHARS) -> str:
    """``text`` as ``[a-z0-9_]``, the last ``keep`` characters (``x`` when nothing is left)."""
    s = _SLUG_RUN.sub("_", text.lower()).strip("_")
    return s[-keep:].strip("_") or "x"


def source_id(name: str) -> str:
    """The topic-safe id of a source (see the module's docstring)."""
    return source_identity(name)[0]


@functools.lru_cache(maxsize=4096)  # rows come from a few sources: made once per source, not per row
def source_identity(name: str) -> tuple[str, str]:
    """A source's id and its name without credentials."""
    clean = without_credentials(name)
    return f"{slug(clean)}-{hashlib.sha256(clean.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}", clean


def node_id(prefix: str) -> str:
    """The Home Assistant node id (and device) of one publishing edgeclass: its topic prefix."""
    return f"edgeclass_{slug(prefix, 60)}"


def result_topic(prefix: str, sid: str) -> str:
    return f"{prefix}/{sid}/result"


def state_topic(prefix: str, sid: str) -> str:
    return f"{prefix}/{sid}/state"


def availability_topic(prefix: str) -> str:
    return f"{prefix}/status"


def discovery_topic(prefix: str, sid: str, discovery_prefix: str = DISCOVERY_PREFIX) -> str:
    return f"{discovery_prefix}/sensor/{node_id(prefix)}/{sid}/config"


def result_fields(row: Mapping[str, Any], source_name: str) -> dict[str, Any]:
    """The body of a result message without its ``id``: the row's columns as the output file
    has them (``source``, ``frame``, ``timestamp_ms``, ``status``, ``error``, ``model``,
    ``topN_id``/``topN_label``/``topN_score``), plus ``source_id``, the source's name (masked), and
    ``label``/``score`` (top 1; null when the row failed)."""
    fields = dict(row)
    ok = fields.get("status") == "ok"
    fields["source_id"], fields["source_name"] = source_identity(source_name)
    fields["label"] = fields.get("top1_label") if ok else None
    fields["score"] = fields.get("top1_score") if ok else None
    return fields


def state_payload(message: Mapping[str, Any]) -> dict[str, Any]:
    """The retained state of a source: its latest row in short (label, score, status...)."""
    keys = ("label", "score", "status", "error", "source", "frame", "timestamp_ms", "model", "id")
    return {k: message.get(k) for k in keys}


def dumps(payload: Mapping[str, Any]) -> str:
    """JSON on one line (control characters escaped), UTF-8 text kept as it is (text that is
    not valid UTF-8, e.g. a lone surrogate from an odd file name: escaped as ``\\uXXXX``)."""
    text = _JSON.encode(payload)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _JSON_ASCII.encode(payload)
    return text


def discovery_config(prefix: str, sid: str, name: str, model: str, sw_version: str) -> dict[str, Any]:
    """Home Assistant's MQTT discovery config of one source's sensor: the label as its state,
    the rest of the state (score, status...) as attributes, available while edgeclass is."""
    node = node_id(prefix)
    return {
        "name": without_credentials(name)[-120:],
        "unique_id": f"{node}_{sid}",
        "state_topic": state_topic(prefix, sid),
        "value_template": "{{ value_json.label if value_json.status == 'ok' else value_json.status }}",
        "json_attributes_topic": state_topic(prefix, sid),
        "availability_topic": availability_topic(prefix),
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "icon": "mdi:image-search",
        "device": {"identifiers": [node], "name": f"edgeclass {prefix}", "manufacturer": "edgeclass",
                   "model": model or "edgeclass", "sw_version": sw_version},
        "origin": {"name": "edgeclass", "sw_version": sw_version},
    }
