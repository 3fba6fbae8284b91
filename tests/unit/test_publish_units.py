"""edgeclass.publish without a network: --publish URLs, source ids and topics, payloads, the
Home Assistant discovery config against HA's MQTT sensor schema, and the outbox file (reopened,
torn, compacted, bounded, and killed with SIGKILL in the middle of its writes)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ha_schema import ha_sensor_errors

from edgeclass.errors import EXIT_USAGE, UsageError
from edgeclass.publish import topics
from edgeclass.publish.outbox import MAGIC, Outbox, read_outbox
from edgeclass.publish.target import MqttTarget, WebhookTarget, parse_header, parse_target, parse_targets

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- --publish URLs
@pytest.mark.parametrize("url, host, port, prefix, tls", [
    ("mqtt://broker.lan/shop", "broker.lan", 1883, "shop", False),
    ("mqtt://broker.lan:1884/a/b", "broker.lan", 1884, "a/b", False),
    ("mqtts://broker.lan/x/", "broker.lan", 8883, "x", True),
    ("mqtt://10.0.0.2", "10.0.0.2", 1883, "edgeclass", False),
    ("mqtt://[::1]:1999/p", "::1", 1999, "p", False),
])
def test_mqtt_urls(url, host, port, prefix, tls):
    t = parse_target(url, env={})
    assert isinstance(t, MqttTarget)
    assert (t.host, t.port, t.prefix, t.tls, t.username, t.password) == (host, port, prefix, tls, None, None)


@pytest.mark.parametrize("url, why", [
    ("ftp://host/x", "unknown scheme"),
    ("host/x", "unknown scheme"),
    ("mqtt://host:/x", "missing port"),
    ("mqtt://host:0/x", "port 0"),
    ("mqtt://host:70000/x", "not a valid URL"),
    ("mqtt://u:secret@host:abc/x", "not a valid URL"),
    ("mqtt:///x", "no host"),
    ("mqtt://host/a/+/b", "topic prefix"),
    ("mqtt://host/a/#", "no '?' or '#'"),
    ("mqtt://host/a//b", "topic prefix"),
    ("mqtt://host/$SYS/x", "topic prefix"),
    ("mqtt://host/x?retain=1", "no '?'"),
    ("http://example.com/hook", "plain http://"),
    ("https://host/x#frag", "no '#'"),
])
def test_bad_urls_are_usage_errors(url, why):
    with pytest.raises(UsageError) as err:
        parse_target(url, env={})
    assert why in str(err.value)
    assert err.value.exit_code == EXIT_USAGE
    assert "secret" not in str(err.value)


def test_credentials_from_url_and_environment_never_shown():
    t = parse_target("mqtt://ana:p%40ss@h/x", env={})
    assert (t.username, t.password) == ("ana", "p@ss")
    assert t.masked() == "mqtt://ana:***@h:1883/x"
    assert "p@ss" not in repr(t)
    t = parse_target("mqtt://ana@h/x", env={"EDGECLASS_PUBLISH_PASSWORD": "from-env"})
    assert t.password == "from-env" and "from-env" not in t.masked() + repr(t)
    assert parse_target("mqtt://ana@h/x", env={}).masked() == "mqtt://ana@h:1883/x"
    # a new password keeps the outbox (the key is made from the masked form)
    assert parse_target("mqtt://ana:a@h/x", env={}).key == parse_target("mqtt://ana:b@h/x", env={}).key


def test_webhooks_and_headers():
    t = parse_targets(["https://hooks.example/in?token=abc&x=1", "http://127.0.0.1:9/h"],
                      ["Authorization: Bearer s3cret"], env={})
    assert all(isinstance(x, WebhookTarget) for x in t)
    assert t[0].masked() == "https://hooks.example/in?token=***&x=***"
    assert t[0].headers == (("Authorization", "Bearer s3cret"),)
    assert "s3cret" not in repr(t) and "abc" not in repr(t)
    for bad in ("Authorization", "Bad Name: x", "X-A:", "X-A: a\nb"):
        with pytest.raises(UsageError) as err:
            parse_header(bad)
        assert "s3cret" not in str(err.value)
    with pytest.raises(UsageError, match="for webhooks"):
        parse_targets(["mqtt://h/x"], ["X-A: b"], env={})
    with pytest.raises(UsageError, match="twice"):
        parse_targets(["mqtt://h/x", "mqtt://h:1883/x/"], env={})


# ---------------------------------------------------------------------------- source ids, topics
@pytest.mark.parametrize("name", [
    "rtsp://user:pw@10.0.0.5:554/cam1", "/data/incoming/front door", "/x/a+b#c/d", "/tmp/\udcff\u00e9t\u00e9",
    "", "/" * 300 + "long" * 100, "C:\\cams\\cam1", "+", "#", "$SYS",
])
def test_source_ids_are_safe_and_stable(name):
    sid = topics.source_id(name)
    assert re.fullmatch(r"[a-z0-9_]{1,40}-[0-9a-f]{8}", sid)
    assert sid == topics.source_id(name)
    assert topics.result_topic("shop", sid).count("/") == 2


def test_source_ids_readable_distinct_and_credential_free():
    assert topics.source_id("rtsp://u:pw@10.0.0.5/cam1") == topics.source_id("rtsp://other:x@10.0.0.5/cam1")
    assert topics.source_id("rtsp://u:pw@10.0.0.5/cam1").startswith("rtsp_10_0_0_5_cam1-")
    assert topics.source_id("/a/b_c") != topics.source_id("/a/b-c")  # same slug, different hash
    assert topics.source_id("/data/incoming/cam1").startswith("data_incoming_cam1-")


def row(status="ok", source="/cams/cam1/a.jpg", label="cat", score=0.75):
    ok = status == "ok"
    return {"source": source, "frame": None, "timestamp_ms": None, "status": status, "error": "" if ok else "bad",
            "model": "shapes@0123456789ab", "top1_id": 1 if ok else None, "top1_label": label if ok else None,
            "top1_score": score if ok else None}


def test_payloads():
    fields = topics.result_fields(row(), "/cams/cam1")
    body = json.loads(topics.dumps({"id": 7, **fields}))
    assert body["id"] == 7 and body["label"] == "cat" and body["score"] == 0.75 and body["status"] == "ok"
    assert {k: body[k] for k in row()} == row()  # every column, as the output file has it
    assert body["source_id"] == topics.source_id("/cams/cam1")
    state = topics.state_payload(body)
    assert state["label"] == "cat" and state["status"] == "ok" and state["id"] == 7
    failed = topics.result_fields(row("corrupt"), "/cams/cam1")
    assert failed["label"] is None and failed["score"] is None and failed["status"] == "corrupt"
    assert topics.result_fields(row(), "rtsp://u:pw@h/c")["source_name"] == "rtsp://h/c"
    # names that are not valid UTF-8 still make valid JSON
    odd = topics.dumps({"source": "/x/\udcff.jpg"})
    assert json.loads(odd)["source"] == "/x/\udcff.jpg"
    odd.encode("utf-8")


def test_discovery_config_is_a_home_assistant_mqtt_sensor():
    sid = topics.source_id("rtsp://u:pw@10.0.0.5/cam1")
    config = topics.discovery_config("shop/floor", sid, "rtsp://u:pw@10.0.0.5/cam1", "mobilevitv2", "0.9")
    assert ha_sensor_errors(topics.discovery_topic("shop/floor", sid), config) == []
    assert config["state_topic"] == config["json_attributes_topic"] == f"shop/floor/{sid}/state"
    assert config["availability_topic"] == "shop/floor/status"
    assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
    assert "pw" not in json.dumps(config)
    assert ha_sensor_errors("homeassistant/sensor/a/b/config", {"unique_id": "x", "bogus": 1}) == [
        "unknown key bogus", "missing state_topic"]


# ---------------------------------------------------------------------------- the outbox
def say_into(lines):
    return lines.append


def test_outbox_survives_reopen_and_keeps_ids(tmp_path):
    path, said = tmp_path / "out.csv.outbox-x", []
    box = Outbox(path, 100, "t", say_into(said))
    msgs = [box.add(f"s{i % 2}", {"n": i}, topics.dumps) for i in range(10)]
    assert [m.id for m in msgs] == list(range(1, 11))
    box.done([1, 2, 3])
    box.done([5], "too large")
    box.close()
    again = Outbox(path, 100, "t", say_into(said))
    assert again.carried == 6 and [m.id for m in again.pending(0, 100)] == [4, 6, 7, 8, 9, 10]
    assert again.pending(7, 2)[0].fields() == {"id": 8, "n": 7}
    again.done([4, 6, 7, 8, 9, 10])
    nxt = again.add("s", {"n": 99}, topics.dumps)
    again.close()
    assert nxt.id == 11  # never reused, also after everything was delivered and compacted
    assert Outbox(path, 100, "t", said.append).pending(0, 10)[0].id == 11
    assert any("undeliverable (too large)" in s for s in said)


def test_outbox_cuts_a_torn_line_and_refuses_a_foreign_file(tmp_path):
    path = tmp_path / "o"
    box = Outbox(path, 100, "t", print)
    for i in range(3):
        box.add("s", {"n": i}, topics.dumps)
    box.sync()
    with open(path, "ab") as fh:
        fh.write(b'M\t4\ts\t{"id":4,"n"')  # a kill in the middle of a write
    pending, next_id, _ = read_outbox(path)
    assert list(pending) == [1, 2, 3] and next_id == 4
    assert [m.id for m in Outbox(path, 100, "t", print).pending()] == [1, 2, 3]
    (tmp_path / "foreign").write_text("hello\n")
    with pytest.raises(Exception, match="not an edgeclass outbox"):
        Outbox(tmp_path / "foreign", 100, "t", print)


def test_outbox_bound_drops_oldest_counted_and_said(tmp_path):
    said: list[str] = []
    box = Outbox(tmp_path / "o", 5, "mqtt://h:1883/x", said.append)
    for i in range(12):
        box.add("s", {"n": i}, topics.dumps)
    assert box.dropped == 7 and [m.id for m in box.pending(0, 99)] == [8, 9, 10, 11, 12]
    assert len([s for s in said if "dropping the oldest" in s]) == 1  # one line per episode
    box.close()
    assert list(read_outbox(tmp_path / "o")[0]) == [8, 9, 10, 11, 12]


def test_outbox_file_stays_bounded(tmp_path):
    path = tmp_path / "o"
    box = Outbox(path, 50, "t", print)
    for i in range(5000):
        m = box.add("s", {"n": i, "pad": "x" * 100}, topics.dumps)
        box.done([m.id])
    assert path.stat().st_size < 300_000  # compacted as it goes: not 5000 messages
    box.close()
    assert read_outbox(path)[:2] == ({}, 5001)
    Outbox(path, 50, "t", print).close()  # opening it compacts it
    assert path.read_text() == f"{MAGIC}\nN\t5001\n"


def test_outbox_add_only_writes_the_sender_does_the_upkeep(tmp_path, monkeypatch):
    """The run's thread (add) writes one record and never fsyncs or rewrites: the sender's
    upkeep does (fsync on the journal's policy, compaction of the rows dropped at the bound)."""
    import edgeclass.publish.outbox as ob

    calls: list[str] = []
    path = tmp_path / "o"
    box = Outbox(path, 5, "t", print, sync_every_s=0.0)  # opening it writes it afresh (fsyncs): not counted
    monkeypatch.setattr(ob.os, "fsync", lambda fd: calls.append("fsync"))
    monkeypatch.setattr(ob, "COMPACT_MIN", 10)
    monkeypatch.setattr(box, "_rewrite", lambda: calls.append("rewrite"))
    for i in range(40):  # 35 dropped at the bound: garbage beyond COMPACT_MIN
        box.add("s", {"n": i}, topics.dumps)
    assert calls == [] and box.dropped == 35
    box.upkeep()
    assert calls == ["rewrite"]
    monkeypatch.undo()
    box.close()
    assert list(read_outbox(path)[0]) == [36, 37, 38, 39, 40]


def test_memory_outbox(tmp_path):
    box = Outbox(None, 10, "t", print)
    box.add("s", {}, topics.dumps)
    box.close()
    assert box.count == 1 and not list(tmp_path.iterdir())


CHILD = r"""
import sys, os
sys.path.insert(0, sys.argv[2])
import edgeclass.publish.outbox as ob
from edgeclass.publish import topics
ob.COMPACT_MIN = 20  # compact often: kills land in rewrites too
box = ob.Outbox(ob.Path(sys.argv[1]), 10**6, "t", print)
os.write(1, b"R\n")
i = 0
while True:
    m = box.add("s", {"n": i, "pad": "y" * (i % 300)}, topics.dumps)
    if i % 3 == 0:
        box.done([m.id])
        os.write(1, f"A{m.id}\n".encode())
    else:
        os.write(1, f"M{m.id}\n".encode())
    i += 1
"""


@pytest.mark.parametrize("round_", range(4))
def test_outbox_kill_at_writes(tmp_path, round_):
    """SIGKILL a process adding and acknowledging as fast as it can: every message it was told
    was added is pending after the kill unless it was told delivered; ids never go back."""
    path = tmp_path / "o"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    for kill in range(3):  # kill, reopen in a new process, kill again
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(REPO)], stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"R\n"  # the outbox is open: kill while it writes
        time.sleep(0.05 + 0.07 * round_ + 0.03 * kill)
        os.kill(proc.pid, signal.SIGKILL)
        out = proc.communicate()[0].decode().split()
        proc.wait()
        pending, next_id, _ = read_outbox(path)
        added = {int(x[1:]) for x in out if x.startswith("M")}
        acked = {int(x[1:]) for x in out if x.startswith("A")}
        assert added <= set(pending), f"lost {sorted(added - set(pending))[:5]}"
        assert not acked & set(pending), "a message said delivered came back"
        assert next_id > max(added | acked, default=0)
