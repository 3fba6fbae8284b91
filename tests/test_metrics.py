"""`run --metrics-file`: Prometheus' text format for node_exporter's textfile collector, read back
with prometheus_client's parser and checked against the output read with pandas. (Live sources'
metrics: tests/test_live_failures.py.)"""

from __future__ import annotations

import json
import os
import shutil
import time

import pandas as pd

from conftest import run_cli
from test_live_failures import assert_rows_match_output, metric, read_metrics


def _run(*args):
    r = run_cli("run", *map(str, args))
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_metrics_file_of_runs_that_succeed_and_fail(trained_model_dir, image_sets, tmp_path):
    """Rows by status equal the output's; the model as an info metric; the last success is the
    end of the run that succeeded, kept (read back from the file) by a run that failed."""
    prom, summary = tmp_path / "textfile" / "edgeclass.prom", tmp_path / "s.json"
    prom.parent.mkdir()
    before = time.time()
    r = _run(image_sets["run"], "--model", trained_model_dir, "-o", tmp_path / "ok.csv", "--metrics-file", prom,
             "--summary-json", summary)
    after = time.time()
    assert r.returncode == 0, r.stderr
    m, s = read_metrics(prom), json.loads(summary.read_text())
    assert_rows_match_output(m, tmp_path / "ok.csv")
    assert metric(m, "edgeclass_rows_total", status="ok") == 12
    assert (metric(m, "edgeclass_exit_code"), metric(m, "edgeclass_running")) == (0, 0)
    first_success = metric(m, "edgeclass_last_success_timestamp_seconds")
    assert before <= first_success <= after
    assert before <= metric(m, "edgeclass_run_start_timestamp_seconds") <= first_success
    assert abs(metric(m, "edgeclass_run_duration_seconds") - s["duration_s"]) < 1e-3
    assert abs(metric(m, "edgeclass_images_per_second") - s["images_per_s"]) < 0.01
    info = {k: v for (name, labels), v in m.items() if name == "edgeclass_model_info" for k, v in labels}
    assert info == {"model": s["model"], "model_id": s["model_id"], "precision": s["precision"],
                    "inference_precision": s["inference_precision"]}
    assert s["model_id"].startswith(trained_model_dir.name + "@") and s["precision"] == "int8"
    assert metric(m, "edgeclass_resume_skipped_total") == 0
    assert not any(name.startswith("edgeclass_source_") for name, _ in m)  # no live source in this run

    # a failing run (a corrupt image): exit 1, its own rows, the earlier success kept
    folder = tmp_path / "with_corrupt"
    shutil.copytree(image_sets["run"], folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg" + os.urandom(100))
    r = _run(folder, "--model", trained_model_dir, "-o", tmp_path / "bad.csv", "--metrics-file", prom)
    assert r.returncode == 1, r.stderr
    m = read_metrics(prom)
    assert_rows_match_output(m, tmp_path / "bad.csv")
    assert (metric(m, "edgeclass_rows_total", status="corrupt"), metric(m, "edgeclass_exit_code")) == (1, 1)
    assert metric(m, "edgeclass_last_success_timestamp_seconds") == first_success
    assert sorted(p.name for p in prom.parent.iterdir()) == ["edgeclass.prom"]  # no temporary left behind

    # --resume skips everything: counted as skipped, no rows
    r = _run(folder, "--model", trained_model_dir, "-o", tmp_path / "bad.csv", "--resume", "--metrics-file", prom)
    m = read_metrics(prom)
    assert metric(m, "edgeclass_resume_skipped_total") == 13 and metric(m, "edgeclass_rows_total", status="ok") == 0
    assert len(pd.read_csv(tmp_path / "bad.csv")) == 13


def test_a_run_that_fails_before_classifying_writes_its_exit_code(tmp_path):
    """A missing model (exit 3): the metrics say so, with no rows and no model; the last success
    of the file it replaces is kept."""
    prom = tmp_path / "edgeclass.prom"
    prom.write_text("# TYPE edgeclass_last_success_timestamp_seconds gauge\n"
                    "edgeclass_last_success_timestamp_seconds 1700000000.5\n")
    r = _run(tmp_path, "--model", tmp_path / "no-such-model", "--metrics-file", prom)
    assert r.returncode == 3, r.stderr
    m = read_metrics(prom)
    assert (metric(m, "edgeclass_exit_code"), metric(m, "edgeclass_running")) == (3, 0)
    assert metric(m, "edgeclass_last_success_timestamp_seconds") == 1700000000.5
    assert sum(v for (name, _), v in m.items() if name == "edgeclass_rows_total") == 0
    assert not any(name == "edgeclass_model_info" for name, _ in m)


def test_unwritable_metrics_file_exits_6_before_any_work(tmp_path, image_sets):
    """Checked before the model is opened (a missing model would be exit 3) or an input read."""
    folder = tmp_path / "a_folder"
    folder.mkdir()
    for bad in (folder, tmp_path / "missing" / "m.prom"):
        r = _run(image_sets["run"], "--model", tmp_path / "no-such-model", "--metrics-file", bad)
        assert r.returncode == 6, r.stderr
        assert "--metrics-file" in r.stderr and r.stdout == ""
    assert list(folder.iterdir()) == [] and not (tmp_path / "missing").exists()


def test_metrics_written_while_the_run_goes_on(trained_model_dir, tmp_path):
    """The ticker of a run in progress: running 1, no exit code yet, the rows so far."""
    from edgeclass.engine import Classifier
    from edgeclass.modelfiles.folder import resolve_model_dir
    from edgeclass.results import Result, RunCounts, Status
    from edgeclass.run.metrics import Ticker

    prom = tmp_path / "m.prom"
    counts = RunCounts()
    for status in (Status.OK, Status.OK, Status.TIMEOUT):
        counts.add(Result("x", status))
    with Classifier(resolve_model_dir(trained_model_dir)) as classifier:
        ticker = Ticker(prom, counts, classifier, every_s=0.05)
        try:
            deadline = time.monotonic() + 30
            while not prom.exists():
                assert time.monotonic() < deadline
                time.sleep(0.02)
        finally:
            ticker.stop()
        m = read_metrics(prom)
        assert metric(m, "edgeclass_running") == 1 and not any(name == "edgeclass_exit_code" for name, _ in m)
        assert (metric(m, "edgeclass_rows_total", status="ok"), metric(m, "edgeclass_rows_total", status="timeout")) \
            == (2, 1)
        assert metric(m, "edgeclass_model_info", model=classifier.metadata.model_name, model_id=classifier.model_id,
                      precision=classifier.precision, inference_precision=classifier.inference_precision) == 1
        assert metric(m, "edgeclass_last_success_timestamp_seconds") == 0


