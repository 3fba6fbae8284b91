"""Publishing with real parts: a Mosquitto broker on 127.0.0.1 (started here, stopped by its
pid), paho-mqtt as the subscriber, a local webhook server. Rows go in through
:class:`edgeclass.publish.hub.Publishing`, the run layer's one entry point."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edgeclass.publish import topics
from edgeclass.publish.hub import Publishing, PublishSettings, summary_line
from edgeclass.publish.outbox import read_outbox
from edgeclass.publish.sender import SendOptions
from edgeclass.publish.target import parse_targets
from mqtt_broker import Broker, SilentBroker, Subscriber, Webhook, free_port, mosquitto_missing, retained
from ha_schema import ha_sensor_errors

pytestmark = pytest.mark.skipif(mosquitto_missing() is not None, reason=str(mosquitto_missing()))

FAST = SendOptions(connect_timeout_s=1.0, ack_timeout_s=1.5, retry_min_s=0.1, retry_max_s=0.3)


def row(i: int, source: str, status: str = "ok", error: str = "") -> dict:
    ok = status == "ok"
    return {"source": f"{source}/{i}.jpg", "frame": None, "timestamp_ms": None, "status": status, "error": error,
            "model": "shapes@0123456789ab", "top1_id": i % 3 if ok else None,
            "top1_label": f"class{i % 3}" if ok else None, "top1_score": 0.5 if ok else None}


def publishing(urls, output: Path | None, said: list[str], headers=(), **kw) -> Publishing:
    settings = PublishSettings(parse_targets(urls, headers, env={}), kw.pop("discovery", False),
                               kw.pop("max_pending", 10_000), kw.pop("options", FAST))
    return Publishing(settings, output, said.append, model="shapes", sw_version="9.9", **kw)


def in_order_per_source(messages: list[dict]) -> dict[str, list[int]]:
    """Ids per source after dropping duplicates (consumers drop them by id)."""
    seen, out = set(), {}
    for m in messages:
        if m["id"] not in seen:
            seen.add(m["id"])
            out.setdefault(m["source_id"], []).append(m["id"])
    return out


def test_rows_state_and_discovery(tmp_path, broker):
    sub = Subscriber(broker.port).start()
    said: list[str] = []
    pub = publishing([broker.url + "/shop"], tmp_path / "out.csv", said, discovery=True)
    rows = [(f"/cams/cam{i % 2}", row(i, f"/cams/cam{i % 2}")) for i in range(20)]
    rows.append(("/cams/cam1", row(20, "/cams/cam1", "corrupt", "not an image")))
    for name, r in rows:
        pub.add(name, r)
    reports = pub.finish(10)
    assert [(r.pending, r.delivered, r.failures) for r in reports] == [(0, 21, 0)] and said == []
    results = sub.wait_for("/result", 21)
    sub.stop()
    assert sorted(m["id"] for m in results) == list(range(1, 22))
    for m in results:
        name, r = rows[m["id"] - 1]
        assert {k: m[k] for k in r} == r  # the row's columns, as written
        assert m["source_id"] == topics.source_id(name) and m["label"] == r["top1_label"]
    kept = retained(broker.port, "#")
    cam1 = topics.source_id("/cams/cam1")
    state = json.loads(kept[f"shop/{cam1}/state"])
    assert state["status"] == "corrupt" and state["id"] == 21 and state["label"] is None  # the last row
    assert json.loads(kept[f"shop/{topics.source_id('/cams/cam0')}/state"])["source"] == "/cams/cam0/18.jpg"
    assert kept["shop/status"] == b"online"
    config_topic = topics.discovery_topic("shop", cam1)
    config = json.loads(kept[config_topic])
    assert ha_sensor_errors(config_topic, config) == []
    assert config["state_topic"] == f"shop/{cam1}/state" and config["device"]["sw_version"] == "9.9"
    assert read_outbox(tmp_path / f"out.csv.outbox-{parse_targets([broker.url + '/shop'])[0].key}")[0] == {}


def test_broker_killed_mid_stream_and_restarted(tmp_path, broker):
    """The broker is killed (SIGKILL) in the middle of a stream of rows from three sources and
    started again: a subscriber with a persistent session sees every row at least once and, once
    duplicates are dropped by id, in order per source."""
    broker.conf.write_text(broker.conf.read_text().replace(
        "persistence false", f"persistence true\npersistence_location {tmp_path}/\nautosave_interval 1"))
    broker.stop()
    broker.start()
    got, lock = [], threading.Lock()

    def on_message(client, userdata, msg) -> None:
        with lock:
            got.append(json.loads(msg.payload))

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="durable-sub", clean_session=False,
                         protocol=paho.MQTTv311)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("p/+/result", qos=1)
    client.reconnect_delay_set(0.1, 0.5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    time.sleep(0.5)
    said: list[str] = []
    pub = publishing([broker.url + "/p"], tmp_path / "out.csv", said)
    sources = ["rtsp://cam-a/s", "rtsp://cam-b/s", "/snapshots/door"]
    for i in range(400):
        pub.add(sources[i % 3], row(i, sources[i % 3]))
        if i == 200:
            time.sleep(1.2)  # the broker saves the subscriber's session (autosave 1 s)
        if i == 230:
            broker.stop(signal.SIGKILL)  # dies with rows in flight...
        if i == 300:
            broker.start()  # ...and comes back; rows 231-300 waited in the outbox
        time.sleep(0.004)
    reports = pub.finish(20)
    assert reports[0].pending == 0 and reports[0].failures >= 1
    deadline = time.monotonic() + 15
    while len({m["id"] for m in got}) < 400 and time.monotonic() < deadline:
        time.sleep(0.1)
    client.loop_stop()
    with lock:
        assert {m["id"] for m in got} == set(range(1, 401))
        for sid, seq in in_order_per_source(got).items():
            assert seq == sorted(seq), f"{sid} out of order"
    assert 1 <= sum("unreachable" in s or "connection lost" in s for s in said) <= 3  # episodes, not rows
    assert any("delivering again" in s for s in said)


def test_pending_rows_go_first_in_the_next_run(tmp_path):
    port = free_port()
    said: list[str] = []
    url = f"mqtt://127.0.0.1:{port}/p"
    pub = publishing([url], tmp_path / "out.csv", said)
    for i in range(30):
        pub.add("/cam", row(i, "/cam"))
    t0 = time.monotonic()
    reports = pub.finish(10)
    assert time.monotonic() - t0 < 5  # a dead broker is not waited for
    assert reports[0].pending == 30
    assert len([s for s in said if "broker unreachable" in s]) == 1
    assert summary_line(reports).startswith(f"publish: mqtt://127.0.0.1:{port}/p: 30 rows pending (broker unreachable")
    broker = Broker(tmp_path, port=port).start()
    try:
        sub = Subscriber(port).start()
        pub = publishing([url], tmp_path / "out.csv", said)
        assert pub.senders[0].outbox.carried == 30
        for i in range(30, 40):
            pub.add("/cam", row(i, "/cam"))
        reports = pub.finish(10)
        assert reports[0].pending == 0 and reports[0].carried == 30 and reports[0].delivered == 40
        ids = [m["id"] for m in sub.wait_for("/result", 40)]
        sub.stop()
        assert ids == list(range(1, 41))  # the earlier run's rows first, in order
    finally:
        broker.stop()


def test_wrong_password_is_one_clear_line(tmp_path):
    broker = Broker(tmp_path, users={"cam": "right"}).start()
    try:
        said: list[str] = []
        pub = publishing([f"mqtt://cam:wrong@127.0.0.1:{broker.port}/p"], tmp_path / "o.csv", said)
        for i in range(50):
            pub.add("/cam", row(i, "/cam"))
        time.sleep(1.5)  # several refused attempts
        reports = pub.finish(5)
        assert reports[0].pending == 50 and reports[0].failures >= 2
        assert len(said) == 1 and "refused the connection" in said[0] and "password" in said[0]
        assert "wrong" not in said[0] and "cam:***@" in said[0]
        said.clear()
        sub = Subscriber(broker.port, username="cam", password="right").start()
        settings = PublishSettings(parse_targets([f"mqtt://cam@127.0.0.1:{broker.port}/p"],
                                                 env={"EDGECLASS_PUBLISH_PASSWORD": "right"}), options=FAST)
        pub = Publishing(settings, tmp_path / "o.csv", said.append)
        assert pub.finish(10)[0].pending == 0  # the password from the environment; same outbox
        assert len({m["id"] for m in sub.wait_for("/result", 50)}) == 50
        sub.stop()
    finally:
        broker.stop()


def test_a_broker_that_never_acknowledges(tmp_path):
    silent = SilentBroker()
    try:
        said: list[str] = []
        pub = publishing([f"mqtt://127.0.0.1:{silent.port}/p"], tmp_path / "o.csv", said)
        for i in range(10):
            pub.add("/cam", row(i, "/cam"))
        t0 = time.monotonic()
        reports = pub.finish(30)
        took = time.monotonic() - t0
        assert reports[0].pending == 10 and took < FAST.ack_timeout_s + 2
        assert any("no acknowledgement (PUBACK) within 1.5 s" in s for s in said)
        assert silent.publishes >= 1
    finally:
        silent.close()


@pytest.mark.parametrize("limit", ["max_packet_size 2000", "message_size_limit 2000"])
def test_a_payload_too_large_is_undeliverable_and_the_others_go_on(tmp_path, limit):
    """max_packet_size: announced in the CONNACK, the row is never sent; message_size_limit:
    the broker ends the connection over it, each time (the poison rule)."""
    broker = Broker(tmp_path, extra=limit).start()
    try:
        sub = Subscriber(broker.port).start()
        said: list[str] = []
        pub = publishing([broker.url + "/p"], tmp_path / "o.csv", said)
        for i in range(10):
            pub.add("/cam", row(i, "/cam", "error", "x" * 5000 if i == 4 else ""))
        reports = pub.finish(10)
        assert (reports[0].pending, reports[0].undeliverable, reports[0].delivered) == (0, 1, 9)
        assert sorted({m["id"] for m in sub.wait_for("/result", 9)}) == [1, 2, 3, 4, 6, 7, 8, 9, 10]
        sub.stop()
        assert len([s for s in said if "undeliverable" in s]) == 1
        assert "1 undeliverable" in summary_line(reports)
    finally:
        broker.stop()


def test_max_pending_drops_the_oldest_said_once(tmp_path):
    said: list[str] = []
    pub = publishing([f"mqtt://127.0.0.1:{free_port()}/p"], tmp_path / "o.csv", said, max_pending=25)
    for i in range(100):
        pub.add("/cam", row(i, "/cam"))
    reports = pub.finish(0)
    assert (reports[0].pending, reports[0].dropped) == (25, 75)
    assert len([s for s in said if "dropping the oldest" in s]) == 1
    assert "75 dropped at --publish-max-pending" in summary_line(reports)


def test_webhook_retries_until_delivered_in_order(tmp_path):
    hook = Webhook(fail_first=2, fail_status=503)
    try:
        said: list[str] = []
        pub = publishing([hook.url], tmp_path / "o.csv", said, headers=["Authorization: Bearer s3cret"],
                         options=SendOptions(retry_min_s=0.05, retry_max_s=0.2, batch=7))
        for i in range(30):
            pub.add(f"/cam{i % 2}", row(i, f"/cam{i % 2}"))
        reports = pub.finish(10)
        assert (reports[0].pending, reports[0].delivered, reports[0].failures) == (0, 30, 2)
        assert hook.ids() == list(range(1, 31))  # once each, in order (no 2xx was lost here)
        assert all(r["Authorization"] == "Bearer s3cret" for r in hook.requests)
        assert len(said) == 2 and "HTTP 503" in said[0] and "delivering again" in said[1]
        assert not any("s3cret" in s for s in said)
        assert max(len(b["messages"]) for b in hook.accepted) == 7
    finally:
        hook.close()


def test_webhook_413_splits_batches_then_gives_up_on_one(tmp_path):
    hook = Webhook(too_large_over=2)
    try:
        said: list[str] = []
        pub = publishing([hook.url], tmp_path / "o.csv", said, options=SendOptions(retry_min_s=0.05, batch=10))
        for i in range(9):
            pub.add("/cam", row(i, "/cam"))
        assert pub.finish(10)[0].pending == 0
        assert hook.ids() == list(range(1, 10))
    finally:
        hook.close()


def test_webhook_refused_and_unreachable_are_one_line_each(tmp_path):
    hook = Webhook(fail_first=10**6, fail_status=401)
    try:
        said: list[str] = []
        pub = publishing([hook.url, f"http://127.0.0.1:{free_port()}/x"], tmp_path / "o.csv", said,
                         options=SendOptions(retry_min_s=0.05, retry_max_s=0.1, connect_timeout_s=1))
        for i in range(5):
            pub.add("/cam", row(i, "/cam"))
        time.sleep(1)
        reports = pub.finish(5)
        assert [r.pending for r in reports] == [5, 5] and all(r.failures >= 2 for r in reports)
        assert len(said) == 2 and sum("HTTP 401 (check --publish-header)" in s for s in said) == 1
        assert sum("unreachable" in s for s in said) == 1
    finally:
        hook.close()
