"""Real parts for the publishing tests, on 127.0.0.1: a Mosquitto broker (Debian's ``mosquitto``,
scripts/install-test-system-deps.sh) started from a generated config and stopped by its pid; a
paho-mqtt subscriber that records what arrives; a TCP "broker" that accepts MQTT connections but
never acknowledges a PUBLISH; a webhook server that fails its first N requests."""

from __future__ import annotations

import getpass
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from streams import free_port  # noqa: F401 - one helper for a free loopback port (test files import it from here too)

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def mosquitto_missing() -> str | None:
    return None if os.path.exists(MOSQUITTO) else "no mosquitto (scripts/install-test-system-deps.sh installs it)"


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Broker:
    """``mosquitto -c FILE`` on 127.0.0.1:port; ``users`` {name: password} turns anonymous off."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None, extra: str = "", port: int | None = None):
        # port: a given one (a broker that comes back where a run expects it), else a free one
        self.folder, self.port = folder, port or free_port()
        self.proc: subprocess.Popen | None = None
        # `user`: run as whoever starts it (as root, mosquitto would switch to user mosquitto,
        # which cannot write a persistence file in the test's folder)
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr",
                 f"user {getpass.getuser()}", extra]
        if users:
            pw = folder / "passwd"
            pw.write_text("")
            for name, secret in users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(pw), name, secret], check=True)
            pw.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> Broker:
        log = open(self.folder / "mosquitto.log", "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        log.close()
        wait_port(self.port)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@dataclass
class Subscriber:
    """paho-mqtt subscribed to ``topic`` (QoS 1): every message, retained ones flagged."""

    port: int
    topic: str = "#"
    username: str | None = None
    password: str | None = None
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()

    def start(self) -> Subscriber:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("subscriber not subscribed")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def on(self, suffix: str) -> list[dict]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith(suffix) and p]

    def wait_for(self, suffix: str, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len({m["id"] for m in self.on(suffix)}) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.on(suffix)


def retained(port: int, topic: str, timeout: float = 5.0) -> dict[str, bytes]:
    """The retained messages under ``topic`` (a fresh subscriber gets them first)."""
    sub = Subscriber(port, topic).start()
    time.sleep(0.5)
    sub.stop()
    return {t: p for t, p, r in sub.messages if r}


class SilentBroker:
    """Accepts MQTT connections, answers CONNECT with a CONNACK (MQTT 5, success) and then reads
    everything and acknowledges nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.publishes = 0
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        try:
            first = conn.recv(65536)
            if first and first[0] >> 4 == 1:  # CONNECT
                conn.sendall(b"\x20\x03\x00\x00\x00")  # CONNACK: no session, success, no properties
            while data := conn.recv(65536):
                self.publishes += data.count(b"\x32")  # rough: PUBLISH QoS 1 headers seen
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for c in self._conns:
            c.close()


class Webhook:
    """An HTTP server on 127.0.0.1 that answers ``fail_status`` to its first ``fail_first``
    requests, then 200; records each accepted body and the headers of every request."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503, too_large_over: int | None = None):
        self.accepted: list[dict] = []
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(dict(self.headers))
                data = json.loads(body)
                if len(outer.requests) <= fail_first:
                    status = fail_status
                elif too_large_over is not None and len(data["messages"]) > too_large_over:
                    status = 413
                else:
                    status = 200
                    outer.accepted.append(data)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> list[int]:
        return [m["id"] for batch in self.accepted for m in batch["messages"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
