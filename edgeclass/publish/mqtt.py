"""Rows to an MQTT broker (paho-mqtt 2.x, MQTT 5, QoS 1), from one target's outbox.

One thread owns the client: it connects (TCP/TLS within ``connect_timeout_s``, the CONNACK
within ``ack_timeout_s``), keeps up to ``window`` result messages in flight, and marks a row
delivered when its PUBACK arrives. Each result is followed by the source's retained state
(and, with discovery, its Home Assistant config once per connection). A connection lost or a
PUBACK overdue ends the connection; the next one is a new client that sends the outbox again
from its oldest pending message, in order, so a subscriber sees every row at least once and in
order per source (duplicates carry the same ``id``). The outbox, not paho's in-memory queue, is
what is sent. The last will marks the availability topic ``offline`` if the process dies.

Cost (docs/publishing.md#cost): rows go in rounds (``LINGER_S``, or half a window), each corked
into a few TCP segments; paho's network loop is driven here (:meth:`MqttSender._pump`), without
the wake-up socket pair its ``loop()`` writes to on every ``publish``.

A message the broker cannot take is undeliverable (marked in the outbox, counted, said; the
others go on): over the maximum packet size the broker announced in its CONNACK; a PUBACK with
a failure reason code; or the oldest message in flight each time the broker ended the
connection with a protocol error or "packet too large", ``POISON_AFTER`` times in a row
(mosquitto's ``message_size_limit`` answers MQTT 5 clients with a PUBACK paho cannot parse).
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.client import ConnectFlags, DisconnectFlags
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgeclass.publish import topics
from edgeclass.publish.outbox import Message, Outbox
from edgeclass.publish.sender import Sender, SendOptions
from edgeclass.publish.target import MqttTarget

_AUTH_CODES = {134, 135, 140}  # bad user name or password, not authorized, bad authentication method
_POISON_CODES = {129, 130, 149, 153}  # malformed packet, protocol error, packet too large, payload format invalid
POISON_AFTER = 3
STATE_EVERY_S = 0.5  # a source's retained state at most this often while rows stream (always its latest at the end)


class MqttSender(Sender):
    def __init__(self, target: MqttTarget, outbox: Outbox, options: SendOptions, say: Callable[[str], None],
                 source_names: Callable[[str], str], client_id: str):
        """``source_names``: a source id -> the source's (masked) name, for discovery configs."""
        super().__init__(target.masked(), outbox, options, say)
        self.target, self._source_names, self._client_id = target, source_names, client_id
        self.client = self._client(client_id)
        self._connected = False
        self._lost_code: int | None = None  # the reason code of the last disconnection
        self._suspect: tuple[int, int] = (0, 0)  # (message id, times the connection ended with it oldest)
        self._connack: ReasonCode | None = None
        self._max_packet = 0  # the broker's maximum packet size (0: none announced)
        self._inflight: dict[int, tuple[int, float]] = {}  # paho mid -> (message id, sent at)
        self._cursor = 0  # the last message id handed to paho
        self._announced: set[str] = set()  # sources whose discovery config went out on this connection
        self._states_due: dict[str, Message] = {}  # source id -> its latest row sent, state not yet published
        self._state_sent: dict[str, float] = {}  # source id -> when its state was last published
        self._states_inflight: set[int] = set()  # paho mids of states not yet acknowledged
        self._acked: list[int] = []  # message ids acknowledged in this loop
        self._refused: list[tuple[int, str]] = []  # message ids refused in this loop, and why

    def _client(self, client_id: str) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        if self.target.username is not None:
            c.username_pw_set(self.target.username, self.target.password)
        if self.target.tls:
            c.tls_set_context(ssl.create_default_context())
        c.will_set(topics.availability_topic(self.target.prefix), topics.OFFLINE, qos=1, retain=True)
        c.max_inflight_messages_set(self.options.window * 2 + 2)  # results + states + configs
        c.connect_timeout = self.options.connect_timeout_s
        c.on_connect, c.on_disconnect, c.on_publish = self._on_connect, self._on_disconnect, self._on_publish
        return c

    # ------------------------------------------------------------------ the thread
    def step(self) -> bool:
        if not self._connected:
            return self._connect()
        self._send()
        busy = self._inflight or self._states_inflight or self.outbox.pending(self._cursor, 1)
        if not busy and not self._send_states(idle=self.flushing):  # flushing: every state is its latest row
            self.outbox.wait(self._cursor, STATE_EVERY_S if self._states_due else 0.5)
        self.linger(self._cursor + max(1, self.options.window // 2))  # rows and acknowledgements gather
        rc = self._pump(0.01 if self.flushing and (self._inflight or self._states_inflight) else 0.0)
        self._settle_acks()
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS,) or not self._connected:
            self._lost(f"connection lost ({paho.error_string(rc) if rc else 'closed by the broker'}); reconnecting")
            return False
        return self._check_acks()

    def _connect(self) -> bool:
        """A new client (a fresh queue: the outbox is sent again from its oldest message)."""
        self._connack, self._inflight, self._cursor, self._lost_code = None, {}, 0, None
        self._states_inflight.clear()
        self.client = self._client(self._client_id)
        try:
            self.client.connect(self.target.host, self.target.port, keepalive=30, clean_start=True)
        except ssl.SSLError as exc:
            self.episodes.fail("tls", f"TLS failed ({exc.reason or exc}); rows wait in the outbox, retrying")
            return False
        except (OSError, ValueError) as exc:
            self.episodes.fail("unreachable", f"broker unreachable ({_why(exc)}); rows wait in the outbox, retrying")
            return False
        deadline = time.monotonic() + self.options.ack_timeout_s
        while self._connack is None and time.monotonic() < deadline and not self.stopping:
            if self._pump(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS and self._connack is None:
                break
        return self._connected_or_why()

    def _connected_or_why(self) -> bool:
        code = self._connack
        if code is not None and not code.is_failure:
            self._connected, self._announced = True, set()
            _set_option(self.client.socket(), socket.TCP_NODELAY, True)  # rounds are corked; the last one not held back
            self.client.publish(topics.availability_topic(self.target.prefix), topics.ONLINE, qos=1, retain=True)
            return True
        self._drop_socket()
        if code is None:
            self.episodes.fail("no-connack", f"the broker did not answer the connection within "
                                             f"{self.options.ack_timeout_s:g} s; retrying")
        elif code.value in _AUTH_CODES:
            self.episodes.fail("auth", f"the broker refused the connection: {code} (check the user and password "
                                       "in --publish or EDGECLASS_PUBLISH_PASSWORD); rows wait in the outbox")
        else:
            self.episodes.fail("refused", f"the broker refused the connection: {code}; rows wait in the outbox")
        return False

    def _pump(self, timeout: float) -> MQTTErrorCode:
        """paho's ``loop()`` without its wake-up socket pair, which costs a ``send`` per
        ``publish`` (this thread is the only one that publishes): wait for the socket, read
        (PUBACKs...), write what is queued, keepalive."""
        c = self.client
        sock = c.socket()
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        buffered = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0  # TLS bytes already read
        if self.flushing:  # the end of the run: acknowledge the broker's segments at once, so its
            # PUBACKs are not held back by Nagle's algorithm waiting for our delayed ACK (40 ms)
            _set_option(sock, getattr(socket, "TCP_QUICKACK", None), True)
        try:
            readable, writable, _ = select.select([sock], [sock] if c.want_write() else [], [],
                                                  0.0 if buffered else timeout)
        except (OSError, ValueError, TypeError):
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        for ready, work in ((readable or buffered, c.loop_read), (writable, c.loop_write)):
            if ready:
                rc = work()
                if rc or c.socket() is None:
                    return rc
        return c.loop_misc()

    def _send(self) -> None:
        """Publish what fits in the window, then the states due, corked: the round goes out in
        a few TCP segments, not one per message (the broker wakes once, not per row)."""
        sock = self.client.socket()
        _set_option(sock, getattr(socket, "TCP_CORK", None), True)
        try:
            self._send_results()
            self._send_states(idle=False)
        finally:
            _set_option(sock, getattr(socket, "TCP_CORK", None), False)

    def _send_results(self) -> None:
        room = self.options.window - len(self._inflight)
        for msg in self.outbox.pending(self._cursor, room) if room > 0 else ():
            self._cursor = msg.id
            if self._too_large(msg):
                continue
            if self.options.discovery and msg.source_id not in self._announced:
                self._announce(msg.source_id)
            info = self.client.publish(topics.result_topic(self.target.prefix, msg.source_id), msg.body, qos=1)
            self._inflight[info.mid] = (msg.id, time.monotonic())
            self._states_due[msg.source_id] = msg

    def _send_states(self, idle: bool) -> bool:
        """The retained state of each source whose latest row went out: at most every
        ``STATE_EVERY_S`` per source, and all at once at the end of the run (``idle``)."""
        now, sent = time.monotonic(), False
        for sid, msg in list(self._states_due.items()):
            if idle or now - self._state_sent.get(sid, 0.0) >= STATE_EVERY_S:
                del self._states_due[sid]
                self._state_sent[sid] = now
                state = topics.dumps(topics.state_payload(msg.fields()))
                info = self.client.publish(topics.state_topic(self.target.prefix, sid), state, qos=1, retain=True)
                self._states_inflight.add(info.mid)
                sent = True
        return sent

    @property
    def settled(self) -> bool:
        """Every state published and acknowledged (the retained state is the last row)."""
        return not self._states_due and not self._states_inflight

    def _too_large(self, msg: Message) -> bool:
        topic = topics.result_topic(self.target.prefix, msg.source_id)
        size = len(msg.body.encode()) + len(topic.encode()) + 32  # fixed header, ids, properties
        if self._max_packet and size > self._max_packet:
            self.outbox.done([msg.id], f"{size} bytes, over the broker's maximum packet size {self._max_packet}")
            return True
        return False

    def _announce(self, sid: str) -> None:
        name = self._source_names(sid)
        config = topics.discovery_config(self.target.prefix, sid, name, self.options.model, self.options.sw_version)
        self.client.publish(topics.discovery_topic(self.target.prefix, sid), topics.dumps(config), qos=1, retain=True)
        self._announced.add(sid)

    def _check_acks(self) -> bool:
        if not self._inflight:
            return True
        oldest = min(sent for _, sent in self._inflight.values())
        if time.monotonic() - oldest <= self.options.ack_timeout_s:
            return True
        self._lost(f"no acknowledgement (PUBACK) within {self.options.ack_timeout_s:g} s; rows stay pending, "
                   "reconnecting")
        return False

    def _lost(self, text: str) -> None:
        kind = "no-ack" if text.startswith("no acknowledgement") else "lost"
        self.episodes.fail(kind, text)
        self._poison_check()
        self._drop_socket()

    def _poison_check(self) -> None:
        """The broker ended the connection over a packet, again with the same message oldest in
        flight: after ``POISON_AFTER`` times, that message is undeliverable."""
        if self._lost_code not in _POISON_CODES or not self._inflight:
            self._suspect = (0, 0)
            return
        oldest = min(mid for mid, _ in self._inflight.values())
        times = self._suspect[1] + 1 if self._suspect[0] == oldest else 1
        self._suspect = (oldest, times)
        if times >= POISON_AFTER:
            self.outbox.done([oldest], f"the broker ended the connection {times} times over it "
                                       "(too large for it, or refused)")
            self._suspect = (0, 0)

    def _drop_socket(self) -> None:
        self._connected = False
        try:
            self.client.disconnect()
            self._pump(0.0)
        except (OSError, ValueError):
            pass

    def finish(self) -> None:
        if not self._connected:
            return
        if self.options.offline_at_exit:
            info = self.client.publish(topics.availability_topic(self.target.prefix), topics.OFFLINE, qos=1,
                                       retain=True)
            deadline = time.monotonic() + 1.0
            while not info.is_published() and time.monotonic() < deadline:
                self._pump(0.05)
        self._drop_socket()

    # ------------------------------------------------------------------ paho's callbacks (this thread)
    def _on_connect(self, client: paho.Client, userdata: Any, flags: ConnectFlags, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        self._connack = reason_code
        self._max_packet = int(getattr(properties, "MaximumPacketSize", 0) or 0) if properties else 0

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: DisconnectFlags, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        self._connected = False
        self._lost_code = getattr(reason_code, "value", None)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        self._states_inflight.discard(mid)
        entry = self._inflight.pop(mid, None)
        if entry is None:
            return  # a state, a config, the availability
        if reason_code.is_failure:
            self._refused.append((entry[0], str(reason_code)))
        else:
            self._acked.append(entry[0])

    def _settle_acks(self) -> None:
        """The acknowledgements of one loop into the outbox, in one write."""
        if self._acked:
            self.outbox.done(self._acked)
            self._acked = []
            self.episodes.ok(self.outbox.count)
        for mid, code in self._refused:
            self.outbox.done([mid], f"the broker refused it: {code} (e.g. over its message_size_limit)")
        self._refused = []


def _set_option(sock: Any, option: int | None, on: bool) -> None:
    """A TCP option on the client's socket: TCP_CORK (Linux: small writes held back until
    uncorked, so a round goes out in a few segments), TCP_NODELAY (no Nagle delay for what is
    not corked). Nothing where the option or the socket is missing."""
    if sock is None or option is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, int(on))
    except (OSError, ValueError):
        pass


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
