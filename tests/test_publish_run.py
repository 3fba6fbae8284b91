"""`edgeclass run --publish` end to end: the real command in a subprocess, a real Mosquitto broker
on 127.0.0.1 (stopped by its pid), paho-mqtt as the subscriber."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import read_csv, run_cli
from edgeclass.errors import EXIT_INPUT_FAILURES, EXIT_OK, EXIT_USAGE
from edgeclass.publish import topics
from ha_schema import ha_sensor_errors
from mqtt_broker import Broker, Subscriber, free_port, mosquitto_missing, retained

pytestmark = pytest.mark.skipif(mosquitto_missing() is not None, reason=str(mosquitto_missing()))


@pytest.fixture(scope="module")
def cams(image_sets, tmp_path_factory) -> Path:
    """Two 'cameras' (folders of snapshots) of the run images."""
    root = tmp_path_factory.mktemp("cams")
    for i, f in enumerate(sorted(image_sets["run"].glob("*.jpg"))):
        cam = root / f"cam{i % 2}"
        cam.mkdir(exist_ok=True)
        shutil.copy(f, cam / f.name)
    return root


def base(model: Path, inputs: Path, out: Path, *extra: str) -> list[str]:
    return ["run", str(inputs), "--model", str(model), "-o", str(out), "-k", "2", *extra]


def test_rows_arrive_with_state_discovery_summary_and_metrics(trained_model_dir, cams, broker, tmp_path):
    sub = Subscriber(broker.port).start()
    out, summary, prom = tmp_path / "out.csv", tmp_path / "s.json", tmp_path / "m.prom"
    r = run_cli(*base(trained_model_dir, cams, out, "--publish", broker.url + "/shop", "--publish-discovery",
                      "--summary-json", str(summary), "--metrics-file", str(prom)))
    assert r.returncode == EXIT_OK, r.stderr
    rows = read_csv(out)
    got = sub.wait_for("/result", len(rows))
    sub.stop()
    assert sorted(m["id"] for m in got) == list(range(1, len(rows) + 1))
    by_source = {m["source"]: m for m in got}
    for row in rows:
        m = by_source[row["source"]]
        assert m["status"] == row["status"] and m["top1_label"] == row["top1_label"] and m["model"] == row["model"]
        assert m["source_id"] == topics.source_id(str(Path(row["source"]).parent))
    kept = retained(broker.port, "#")
    for cam in ("cam0", "cam1"):
        sid = topics.source_id(str(cams / cam))
        last = [row for row in rows if Path(row["source"]).parent.name == cam][-1]
        assert json.loads(kept[f"shop/{sid}/state"])["source"] == last["source"]  # the retained state: the last row
        topic = topics.discovery_topic("shop", sid)
        assert ha_sensor_errors(topic, json.loads(kept[topic])) == []
    s = json.loads(summary.read_text())
    assert s["publish"] == [{"target": f"mqtt://127.0.0.1:{broker.port}/shop", "pending": 0, "delivered": len(rows),
                             "carried": 0, "dropped": 0, "undeliverable": 0, "failures": 0, "last_failure": None}]
    text = prom.read_text()
    assert f'edgeclass_publish_pending{{target="mqtt://127.0.0.1:{broker.port}/shop"}} 0' in text
    assert "edgeclass_publish_failures_total" in text


@pytest.mark.parametrize("args, why", [
    (["--publish", "ftp://h/x"], "unknown scheme"),
    (["--publish", "mqtt://h:/x"], "missing port"),
    (["--publish", "mqtt://u:hunter2@h/a/+"], "topic prefix"),
    (["--publish", "mqtt://u:hunter2@h/a/+/b"], "topic prefix"),
    (["--publish-discovery"], "need --publish URL"),
    (["--publish", "https://h/x", "--publish-header", "nocolon"], "Name: value"),
    (["--publish", "mqtt://h/x", "--publish-max-pending", "0"], "--publish-max-pending"),
])
def test_bad_publish_options_exit_2_before_any_work(trained_model_dir, cams, tmp_path, args, why):
    out = tmp_path / "out.csv"
    r = run_cli(*base(trained_model_dir, cams, out, *args))
    assert r.returncode == EXIT_USAGE, r.stderr
    assert why in r.stderr and "Traceback" not in r.stderr and "hunter2" not in r.stderr
    assert not out.exists() and not list(tmp_path.glob("*outbox*"))


def test_broker_down_then_resume_sends_pending_first(trained_model_dir, cams, tmp_path):
    port = free_port()
    out, summary = tmp_path / "out.csv", tmp_path / "s.json"
    url = f"mqtt://127.0.0.1:{port}/p"
    t0 = time.monotonic()
    r = run_cli(*base(trained_model_dir, cams, out, "--resume", "--publish", url, "--summary-json", str(summary)))
    assert time.monotonic() - t0 < 60
    rows = read_csv(out)
    assert r.returncode == EXIT_INPUT_FAILURES, r.stderr
    episodes = [line for line in r.stderr.splitlines() if line.startswith("publish ")]
    assert len(episodes) == 1 and "broker unreachable" in episodes[0]  # one line per episode, not per row
    assert f"note: publish: {url}: {len(rows)} rows pending (broker unreachable" in r.stderr
    assert json.loads(summary.read_text())["publish"][0]["pending"] == len(rows)
    broker = Broker(tmp_path, port=port).start()
    try:
        sub = Subscriber(port).start()
        r = run_cli(*base(trained_model_dir, cams, out, "--resume", "--publish", url, "--summary-json", str(summary)))
        assert r.returncode == EXIT_OK, r.stderr
        got = sub.wait_for("/result", len(rows))
        sub.stop()
        assert [m["id"] for m in got] == list(range(1, len(rows) + 1))  # the first run's rows, in order
        assert sorted(m["source"] for m in got) == sorted(row["source"] for row in rows)
        s = json.loads(summary.read_text())["publish"][0]
        assert (s["carried"], s["delivered"], s["pending"]) == (len(rows), len(rows), 0)
    finally:
        broker.stop()


def test_wrong_password_exit_1_with_a_clear_line(trained_model_dir, cams, tmp_path):
    broker = Broker(tmp_path, users={"cam": "right"}).start()
    try:
        r = run_cli(*base(trained_model_dir, cams, tmp_path / "o.csv", "--publish",
                          f"mqtt://cam:wrong-pass@127.0.0.1:{broker.port}/p"))
        assert r.returncode == EXIT_INPUT_FAILURES
        lines = [line for line in r.stderr.splitlines() if line.startswith("publish ")]
        assert len(lines) == 1 and "refused the connection" in lines[0] and "password" in lines[0]
        assert "cam:***@" in lines[0] and "rows pending (the broker refused the connection" in r.stderr
        assert "wrong-pass" not in r.stderr and "Traceback" not in r.stderr
        env = {"EDGECLASS_PUBLISH_PASSWORD": "right"}
        r = run_cli(*base(trained_model_dir, cams, tmp_path / "o.csv", "--publish",
                          f"mqtt://cam@127.0.0.1:{broker.port}/p"), env=env)
        assert r.returncode == EXIT_OK, r.stderr  # the same outbox, now delivered
    finally:
        broker.stop()


def test_kill_9_mid_run_then_resume_loses_no_row(trained_model_dir, image_sets, broker, tmp_path):
    """SIGKILL while rows are published, then --resume: every row of the output arrives."""
    many = tmp_path / "many"
    for i in range(8):
        shutil.copytree(image_sets["run"], many / f"cam{i % 2}" / f"batch{i}")
    out = tmp_path / "out.csv"
    sub = Subscriber(broker.port).start()
    args = base(trained_model_dir, many, out, "--resume", "--threads", "1", "--publish", broker.url + "/p")
    proc = subprocess.Popen([sys.executable, "-m", "edgeclass", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(sub.on("/result")) < 10 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = run_cli(*args)
    assert r.returncode == EXIT_OK, r.stderr
    rows = read_csv(out)
    got = sub.wait_for("/result", len(rows))
    sub.stop()
    assert {row["source"] for row in rows} <= {m["source"] for m in got}
    first: dict[int, dict] = {}
    for m in got:
        first.setdefault(m["id"], m)
    per_source: dict[str, list[int]] = {}
    for mid, m in first.items():  # arrival order, duplicates dropped by id
        per_source.setdefault(m["source_id"], []).append(mid)
    assert all(ids == sorted(ids) for ids in per_source.values())


def test_sigterm_ends_on_time_with_a_dead_broker(trained_model_dir, image_sets, tmp_path):
    many = tmp_path / "many"
    for i in range(8):
        shutil.copytree(image_sets["run"], many / f"b{i}")
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "-m", "edgeclass",
                             *base(trained_model_dir, many, out, "--threads", "1", "--full-decode", "--publish",
                                   f"mqtt://10.255.255.1:{free_port()}/p")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / ".out.csv.partial"
    deadline = time.monotonic() + 120
    while (not partial.exists() or partial.read_bytes().count(b"\n") < 5) and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert time.monotonic() - t0 < 5, "SIGTERM waited for the broker"
    assert "rows pending" in err
    assert list(tmp_path.glob("out.csv.outbox-*"))  # kept for the next run
