"""Rendering for the terminal: Rich tables, progress, and plain log lines for cron.

Rich's table and progress modules are imported where they are drawn: a cron run (``-q``, not a
terminal) never draws them and does not pay their import at start-up."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeclass.modelfiles.metadata import ModelMetadata
from edgeclass.modelfiles.records import CalibrationRecord, GateRecord, LegacyGateRecord, TrainingReport, gate_record
from edgeclass.results import Result

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from edgeclass.model.quantize import QuantizeReport
    from edgeclass.run.bench import BenchReport


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def metadata_table(meta: ModelMetadata, title: str, model_id: str | None = None) -> Table:
    from rich.table import Table

    pp = meta.preprocess
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("model", meta.model_name)
    if model_id:
        t.add_row("model id", f"{model_id} (the `model` column of the rows `run` writes with it)")
    t.add_row("weights", meta.weights_origin)
    t.add_row("precision", meta.precision)
    t.add_row("classes", f"{meta.num_classes} ({', '.join(meta.labels[:3])}{', …' if meta.num_classes > 3 else ''})")
    if meta.num_params:
        t.add_row("parameters", f"{meta.num_params / 1e6:.2f} M")
    t.add_row(
        "input",
        f"{pp.input_size[0]}x{pp.input_size[1]} {pp.input_channel_order} u8 (network {pp.channel_order}), resize shorter side to {pp.resize_shorter} "
        f"({pp.interpolation}, antialiased) + centre crop, mean {list(pp.mean)} std {list(pp.std)}",
    )
    t.add_row("versions", ", ".join(f"{k} {v}" for k, v in sorted(meta.versions.items())))
    if meta.calibration:
        _calibration_rows(t, CalibrationRecord.from_record(meta.calibration))
    gate = gate_record(meta.accuracy)
    if gate is not None:
        t.add_row("INT8 vs FP32", accuracy_line(gate))
    return t


def _calibration_rows(t: Table, c: CalibrationRecord) -> None:
    t.add_row(
        "calibration",
        f"{c.images_used} images used of {c.images_available} ({c.images_failed} failed to decode), "
        f"files sha256 {c.files_sha256[:16]}…, NNCF {c.nncf}, options {c.options}",
    )
    if c.method:
        t.add_row("INT8 method", c.method)
    if c.reverted_to_float:
        t.add_row("kept in float", ", ".join(c.reverted_to_float))
    t.add_row("INT8 made for", c.cpu.made_for())
    t.add_row("gate measured on", c.cpu.measured())


def _legacy_accuracy_line(a: LegacyGateRecord) -> str:
    """An INT8 record written by edgeclass 0.1 (top-1 agreement gate)."""
    line = (
        f"top-1 agreement {a.top1_agreement * 100:.2f}%, mean |Δp| {a.mean_abs_prob_diff:.5f} "
        f"on {a.images} images ({a.source})"
    )
    if a.passed is not None:
        line += f"; gate {'PASSED' if a.passed else 'FAILED'}"
        if a.drop is not None:
            line += f" ({a.drop_kind} {a.drop * 100:.2f} pt)"
    return line


_VERDICT_WORD = {"passed": "PASSED", "inconclusive": "KEPT (inconclusive)", "refused": "REFUSED"}
_VERDICT_STYLE = {"passed": "[green]passed[/]", "inconclusive": "[yellow]kept (inconclusive)[/]", "refused": "[red]REFUSED[/]"}


def accuracy_line(record: GateRecord | LegacyGateRecord | dict[str, Any]) -> str:
    """The INT8 gate's record in one line (a stored record, of this release or edgeclass 0.1)."""
    a = gate_record(record) if isinstance(record, dict) else record
    if a is None:
        return ""
    if isinstance(a, LegacyGateRecord):
        return _legacy_accuracy_line(a)
    line = (f"gate {_VERDICT_WORD[a.verdict]}: {a.criterion} {a.drop.as_points()}, limit {a.limit * 100:.2f} pt; "
            f"on {a.images} {a.source}; top-1 agreement {a.top1_agreement * 100:.2f}%")
    if a.top1_accuracies is not None:
        line += f"; top-1 accuracy FP32 {a.top1_accuracies[0] * 100:.2f}% INT8 {a.top1_accuracies[1] * 100:.2f}%"
    return line + "".join(f"; note: {n}" for n in a.notes)


def agreement_table(a: GateRecord) -> Table:
    from rich.table import Table

    t = Table(title=f"INT8 vs FP32 on {a.images} {a.source}", title_justify="left")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row(f"{a.criterion} (limit {a.limit * 100:.2f} pt)", a.drop.as_points())
    if a.criterion != "expected accuracy drop" and a.expected_drop is not None:
        t.add_row("expected accuracy drop (FP32 as soft labels)", a.expected_drop.as_points())
    if a.top1_accuracies is not None:
        t.add_row("FP32 / INT8 top-1 accuracy", f"{a.top1_accuracies[0] * 100:.2f}% / {a.top1_accuracies[1] * 100:.2f}%")
    t.add_row("top-1 agreement", f"{a.top1_agreement * 100:.2f}%")
    t.add_row("mean |p_int8 - p_fp32|", f"{a.mean_abs_prob_diff:.5f}")
    t.add_row("gate", _VERDICT_STYLE[a.verdict])
    return t


def files_table(files: list[Path]) -> Table:
    from rich.table import Table

    t = Table(title="files written", title_justify="left")
    t.add_column("file")
    t.add_column("size", justify="right")
    for f in files:
        if f.exists():
            t.add_row(str(f), human_size(f.stat().st_size))
    return t


def bench_table(report: BenchReport) -> Table:
    from rich.table import Table

    cpu = report.cpu
    caps = ", ".join(k for k in ("vnni", "bf16", "amx") if cpu[k]) or "none of VNNI/BF16/AMX"
    t = Table(title=f"{report.model} on {cpu['name']} ({cpu['cores']} cores; {caps}; OpenVINO {cpu['openvino']})",
              title_justify="left")
    for col in ("precision", "computes in", "img/s", "vs fp32", "p50 ms", "p90 ms", "p99 ms", "streams/requests/threads"):
        t.add_column(col, justify="left" if col in ("precision", "computes in") else "right")
    base = next((r.throughput for r in report.results if r.precision == "fp32"), None)
    for r in report.results:
        ratio = f"{r.throughput / base:.2f}x" if base else ""
        t.add_row(r.precision, r.inference_precision, f"{r.throughput:.1f}", ratio, f"{r.latency_ms['p50']:.2f}",
                  f"{r.latency_ms['p90']:.2f}", f"{r.latency_ms['p99']:.2f}", f"{r.streams}/{r.requests}/{r.threads}")
    if report.end_to_end:
        e = report.end_to_end
        t.caption = (f"end to end ({e['precision']}, decode + preprocess + inference): {e['images_per_s']:.1f} img/s "
                     f"on {e['images']} images, {e['decode_workers']} decode workers; the inference queue waited "
                     f"for input {100 * e['input_wait_share']:.0f} % of the time")
        if e.get("resampler") == "numpy":
            t.caption += ("; the resampler's NumPy path (installed without a C compiler: reinstall with gcc "
                          "for a fifth of the resize's CPU)")
    return t


def per_source_table(per_source: dict[str, dict[str, Any]]) -> Table:
    from rich.table import Table

    t = Table(title="per video / stream", title_justify="left")
    t.add_column("source")
    t.add_column("frames", justify="right")
    t.add_column("top label")
    t.add_column("share", justify="right")
    for source, d in per_source.items():
        t.add_row(source, str(d["frames"]), d["top_label"], f"{d['share'] * 100:.1f}%")
    return t


class ProgressReporter:
    """Rich progress bar on a terminal; plain periodic log lines otherwise (cron)."""

    def __init__(self, console: Console, total: int | None, interactive: bool, quiet: bool, log_every: float = 10.0):
        self.console = console
        self.quiet = quiet
        self.interactive = interactive and not quiet
        self.total = total
        self.count = 0
        self.failed = 0
        self.started = time.monotonic()
        self.last_log = self.started
        self.log_every = log_every
        self.progress = None
        if self.interactive:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(
                TextColumn("[bold]classifying"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=getattr(console, "real", console),  # the real console behind a LazyConsole
                transient=True,
            )
            self.task = self.progress.add_task("run", total=total, rate="")
            self.progress.start()

    def result(self, result: Result) -> None:
        self.count += 1
        if not result.ok:
            self.failed += 1
            if not self.quiet:  # above the progress bar on a terminal
                self.console.print(f"{result.status.value}: {result.source}: {result.error}", markup=False, highlight=False)
        now = time.monotonic()
        rate = self.count / max(now - self.started, 1e-9)
        if self.progress is not None:
            self.progress.update(self.task, completed=self.count, rate=f"{rate:.1f} img/s")
        elif not self.quiet and now - self.last_log >= self.log_every:
            self.last_log = now
            self.console.print(f"progress: {self.count} done, {self.failed} failed, {rate:.1f} img/s", highlight=False)

    def event(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False, highlight=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def is_interactive(console: Console) -> bool:
    return console.is_terminal and os.environ.get("TERM") != "dumb"


def print_quantize_report(console: Console, report: QuantizeReport) -> None:
    """The INT8 gate's warnings, measurements and method."""
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {escape_markup(str(w))}", highlight=False)
    console.print(agreement_table(GateRecord.from_record(report.gate.to_dict())))
    console.print(f"INT8 method: {report.method}", highlight=False)
    if report.reverted:
        console.print(f"kept in float by accuracy control: {', '.join(report.reverted)}", highlight=False)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _training_table(report: TrainingReport) -> Table:
    """Held-out summary of an `edgeclass train` report (report.json)."""
    from rich.table import Table

    h, t = report.heldout, report.heldout.threshold
    table = Table(title="held-out evaluation (edgeclass train)", title_justify="left")
    for col in ("class", "precision", "recall", "images", "most often taken for"):
        table.add_column(col, justify="left" if col in ("class", "most often taken for") else "right")
    for row, taken_as in zip(h.per_class, report.taken_for()):
        taken = f"{taken_as[0]} ({taken_as[1]})" if taken_as else ""
        table.add_row(escape_markup(row.label), _pct(row.precision), _pct(row.recall), str(row.support), escape_markup(taken))
    table.caption = (f"temperature {report.temperature:.3f}; default --min-score {t.value:.3f}: "
                     f"{t.unknown} of {h.images} held-out images 'unknown', accuracy of the rest {_pct(t.accuracy_kept)}; "
                     f"{report.skipped} images skipped; details in report.html")
    return table


def print_training_report(console: Console, model_dir: Path) -> None:
    from edgeclass.model.train.evaluate_report import read_report

    report = read_report(model_dir)
    if report is not None:
        print_training_summary(console, report)


def print_training_summary(console: Console, record: TrainingReport | dict[str, Any]) -> None:
    """The held-out summary of an `edgeclass train` report (typed, or as stored in report.json)."""
    report = TrainingReport.from_record(record) if isinstance(record, dict) else record
    h = report.heldout
    console.print(f"trained ({report.mode}) on {report.dataset}: held-out accuracy {_pct(h.accuracy)} on "
                  f"{h.images} images, {report.evaluated_precision} model", highlight=False, soft_wrap=True)
    console.print(_training_table(report))
