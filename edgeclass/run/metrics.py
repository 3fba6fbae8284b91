"""``run --metrics-file``: the run in Prometheus' text format for node_exporter's textfile
collector (the cron convention: ``--collector.textfile.directory`` names the folder; the file
must end in ``.prom``). This module writes the format and reads it back (the last success).

Written atomically (a temporary sibling whose name does not end in ``.prom``, so the collector
never reads half a file, renamed over it): every ``METRICS_EVERY_S`` seconds while a run goes on
(``edgeclass_running 1``, no exit code yet), and at its end, also when it fails before
classifying anything (then only its exit code, start and last success).

Metrics (base units; counters end in ``_total`` and count this run: they restart at 0 with the
next run, which Prometheus' ``rate()``/``increase()`` read as a counter reset, and
``edgeclass_run_start_timestamp_seconds`` tells runs apart):

* ``edgeclass_rows_total{status}``: rows written, one series per status (0 included);
  ``edgeclass_resume_skipped_total``, ``edgeclass_resume_kept_other_models_total``: inputs
  ``--resume`` skipped, and those of them whose rows came from another model;
* ``edgeclass_run_duration_seconds``, ``edgeclass_images_per_second`` (rows per second),
  ``edgeclass_run_start_timestamp_seconds``, ``edgeclass_running``, ``edgeclass_exit_code``;
* ``edgeclass_last_success_timestamp_seconds``: when a run last ended with exit code 0. A run
  that fails (or is still going) keeps the value of the file it replaces, 0 when no run has
  succeeded: ``time() - edgeclass_last_success_timestamp_seconds > 3600`` alerts on both;
* ``edgeclass_model_info{model,model_id,precision,inference_precision} 1``,
  ``edgeclass_build_info{version} 1``;
* per live source (label ``source``: its URL with credentials masked): ``edgeclass_source_up``
  (1: frames arriving), ``edgeclass_source_frames_read_total``,
  ``edgeclass_source_frames_dropped_total`` (sampled frames dropped as stale),
  ``edgeclass_source_reconnects_total``, ``edgeclass_source_frozen_episodes_total``,
  ``edgeclass_source_blank_episodes_total``, and ``edgeclass_source_frozen`` /
  ``edgeclass_source_blank`` (1 while the picture is frozen / blank);
* per ``--publish`` target (label ``target``: its URL with credentials masked):
  ``edgeclass_publish_pending`` (rows not yet acknowledged, kept in the outbox) and
  ``edgeclass_publish_failures_total`` (failed connections, acknowledgements and requests).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeclass import __version__, atomic
from edgeclass.errors import EXIT_OK, OutputError
from edgeclass.results import Status

METRICS_EVERY_S = 15.0
_LAST_SUCCESS = "edgeclass_last_success_timestamp_seconds"


@dataclass(frozen=True)
class RunMetrics:
    """What one metrics file says about one run (so far)."""

    started: float  # wall time (time.time())
    duration_s: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)  # by status
    skipped_resume: int = 0
    kept_other_models: int = 0
    exit_code: int | None = None  # None: the run goes on
    model: dict[str, str] | None = None  # model, model_id, precision, inference_precision
    health: dict[str, dict] = field(default_factory=dict)  # live sources (LiveHub.health)
    publish: dict[str, dict[str, int]] = field(default_factory=dict)  # --publish target -> pending, failures

    @classmethod
    def of_summary(cls, summary) -> RunMetrics:
        """A finished run (``edgeclass.run.context.RunSummary``)."""
        c = summary.counts
        model = {"model": summary.model, "model_id": summary.model_id, "precision": summary.precision,
                 "inference_precision": summary.inference_precision}
        return cls(time.time() - summary.duration_s, summary.duration_s, dict(c.by_status), c.skipped_resume,
                   c.kept_other_models, summary.exit_code, model, summary.health,
                   {t["target"]: t for t in summary.publish})

    @property
    def rows_per_s(self) -> float:
        return sum(self.rows.values()) / self.duration_s if self.duration_s > 0 else 0.0


def render(m: RunMetrics, last_success: float) -> str:
    """The text exposition (format 0.0.4) of ``m``."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        if not samples:
            return
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{body}}} {_number(value)}" if body else f"{name} {_number(value)}")

    rows = {s.value: 0 for s in Status} | m.rows
    family("edgeclass_rows_total", "counter", "Rows written by this run, by status.",
           [({"status": k}, v) for k, v in rows.items()])
    family("edgeclass_resume_skipped_total", "counter", "Inputs --resume skipped (already in the output), this run.",
           [({}, m.skipped_resume)])
    family("edgeclass_resume_kept_other_models_total", "counter",
           "Inputs --resume skipped whose rows came from another model (kept), this run.", [({}, m.kept_other_models)])
    family("edgeclass_run_duration_seconds", "gauge", "Seconds this run has taken.", [({}, m.duration_s)])
    family("edgeclass_images_per_second", "gauge", "Rows (images, sampled frames) per second in this run.",
           [({}, m.rows_per_s)])
    family("edgeclass_run_start_timestamp_seconds", "gauge", "When this run started (Unix time).", [({}, m.started)])
    family("edgeclass_running", "gauge", "1 while the run goes on, 0 once it has ended.",
           [({}, 1 if m.exit_code is None else 0)])
    if m.exit_code is not None:
        family("edgeclass_exit_code", "gauge", "Exit code of the run (0: every input classified).",
               [({}, m.exit_code)])
    family(_LAST_SUCCESS, "gauge", "When a run last ended with exit code 0 (Unix time; 0: never).",
           [({}, last_success)])
    if m.model:
        family("edgeclass_model_info", "gauge", "The model of this run's rows.", [(m.model, 1)])
    family("edgeclass_build_info", "gauge", "The edgeclass version.", [({"version": __version__}, 1)])
    _source_families(family, m.health)
    family("edgeclass_publish_pending", "gauge", "Rows not yet acknowledged by the --publish target (outbox).",
           [({"target": t}, p["pending"]) for t, p in m.publish.items()])
    family("edgeclass_publish_failures_total", "counter",
           "Failed connections, acknowledgements and requests to the --publish target, this run.",
           [({"target": t}, p["failures"]) for t, p in m.publish.items()])
    return "\n".join(out) + "\n"


def _source_families(family, health: dict[str, dict]) -> None:
    def per_source(key) -> list[tuple[dict[str, str], float]]:
        return [({"source": name}, key(h)) for name, h in health.items()]

    family("edgeclass_source_up", "gauge", "1 while the live source delivers frames.",
           per_source(lambda h: 1 if h["up"] else 0))
    family("edgeclass_source_frames_read_total", "counter", "Frames decoded from the live source.",
           per_source(lambda h: h["frames_read"]))
    family("edgeclass_source_frames_dropped_total", "counter",
           "Sampled frames dropped as stale (inference behind).", per_source(lambda h: h["dropped"]))
    family("edgeclass_source_reconnects_total", "counter", "Reconnections to the live source.",
           per_source(lambda h: h["reconnects"]))
    family("edgeclass_source_frozen_episodes_total", "counter", "Frozen-picture episodes (frozen rows).",
           per_source(lambda h: h["frozen"]))
    family("edgeclass_source_blank_episodes_total", "counter", "Blank-picture episodes (blank rows).",
           per_source(lambda h: h["blank"]))
    family("edgeclass_source_frozen", "gauge", "1 while the picture is frozen.",
           per_source(lambda h: 1 if h["picture"] == "frozen" else 0))
    family("edgeclass_source_blank", "gauge", "1 while the picture is blank (covered, black, white-out).",
           per_source(lambda h: 1 if h["picture"] == "blank" else 0))


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def read_last_success(path: Path) -> float:
    """``edgeclass_last_success_timestamp_seconds`` of the file at ``path`` (0: none, unreadable)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0.0
    match = re.search(rf"^{_LAST_SUCCESS} ([0-9.eE+]+)$", text, re.MULTILINE)
    try:
        return float(match.group(1)) if match else 0.0
    except ValueError:
        return 0.0


def write(path: Path, m: RunMetrics, durable: bool = True) -> None:
    """Replace the metrics file atomically (raises OSError)."""
    path = Path(path)
    last = m.started + m.duration_s if m.exit_code == EXIT_OK else read_last_success(path)
    tmp = atomic.temp_sibling(path.with_name(path.name + ".tmp"))  # ".NAME.prom.tmp-PID.tmp": not *.prom
    try:
        tmp.write_text(render(m, last), encoding="utf-8")
        atomic.replace_file(tmp, path, durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_run_metrics(path: Path, summary) -> None:
    """At the end of a run (exit 6 when the file cannot be written, as for --summary-json)."""
    try:
        write(path, RunMetrics.of_summary(summary))
    except OSError as exc:
        raise OutputError(f"cannot write --metrics-file {path}: {exc.strerror or exc}") from exc


def write_failed_run(path: Path, exit_code: int, started: float) -> None:
    """A run that ended with an error before its summary (model, output, lock): its exit code.
    Best effort: the run's own error is what gets reported."""
    try:
        write(path, RunMetrics(started, time.time() - started, exit_code=exit_code))
    except OSError:
        pass


class Ticker:
    """Writes the metrics of a run in progress every ``METRICS_EVERY_S`` seconds, in a thread of
    its own (no work per row); :meth:`stop` before the final write."""

    def __init__(self, path: Path | None, counts, classifier, log=None, every_s: float = METRICS_EVERY_S,
                 health=None, publish=None):
        """``health``: a callable returning the live sources' health (the run's LiveSources.health);
        ``publish``: one returning the --publish targets' pending and failures (RunPublisher.stats)."""
        self.path, self.counts, self.every_s, self.log, self.health = path, counts, every_s, log, health
        self.publish = publish
        self.model = {"model": classifier.metadata.model_name, "model_id": classifier.model_id,
                      "precision": classifier.precision, "inference_precision": classifier.inference_precision}
        self.started, self._t0 = time.time(), time.perf_counter()
        self._stop = threading.Event()
        self._failed = False
        self._thread = None
        if path is not None:
            self._thread = threading.Thread(target=self._loop, args=(path,), name="edgeclass-metrics", daemon=True)
            self._thread.start()

    def snapshot(self) -> RunMetrics:
        c = self.counts
        health = self.health() if self.health else {}
        publish = self.publish() if self.publish else {}
        return RunMetrics(self.started, time.perf_counter() - self._t0, dict(c.by_status), c.skipped_resume,
                          c.kept_other_models, None, self.model, health, publish)

    def _loop(self, path: Path) -> None:
        while not self._stop.wait(self.every_s):
            try:
                write(path, self.snapshot(), durable=False)
            except OSError as exc:
                if not self._failed and self.log:
                    self.log(f"cannot write --metrics-file {path}: {exc.strerror or exc}")
                self._failed = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def check_metrics_file(path: Path | None) -> bool:
    """Before any work: exit 6 when ``path`` cannot be written. True when there is a file to write."""
    if path is None:
        return False
    from edgeclass.run.ledger import check_output

    check_output(path, "--metrics-file", create_parent=False)
    return True
