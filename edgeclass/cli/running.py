"""`run` and `bench`: classifying, and measuring."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from edgeclass.errors import EXIT_MAX_RUNTIME, EXIT_OK, EdgeclassError
from edgeclass.cli.app import EXIT_CODES_HELP, app, err_console, fail, out_console, say
from edgeclass.cli.options import OutputFormat, Precision, Verbose

if TYPE_CHECKING:
    from rich.console import Console

    from edgeclass.cli.render import ProgressReporter
    from edgeclass.results import Result
    from edgeclass.run.plan import RunStart


# ----------------------------------------------------------------------------- bench
@app.command()
def bench(
    folder: Annotated[Optional[Path], typer.Argument(exists=True, file_okay=False, help="Also measure end to end (decode included) on these images.")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model folder (default: the latest under models/).")] = None,
    precision: Annotated[list[str], typer.Option(help="fp32, bf16, int8; repeatable (default: all available).")] = [],  # noqa: B006
    seconds: Annotated[float, typer.Option(min=0.5, help="Measuring time per precision.")] = 5.0,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Cap on inference threads.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead of a table.")] = False,
) -> None:
    """Inference throughput (THROUGHPUT hint) and latency p50/p90/p99 (LATENCY hint) per precision."""
    import json

    from edgeclass.run.bench import bench as do_bench
    from edgeclass.modelfiles.folder import resolve_model_dir
    from edgeclass.cli.render import bench_table

    console = err_console()
    try:
        md = resolve_model_dir(model)
        with console.status("benchmarking") as status:
            report = do_bench(md, precision or None, seconds, threads, folder, progress=lambda m: status.update(m))
    except EdgeclassError as exc:
        raise fail(console, exc) from exc
    if json_out:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        out_console().print(bench_table(report))


# ----------------------------------------------------------------------------- run
@app.command(epilog=EXIT_CODES_HELP)
def run(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (recursive), videos, stream URLs, cameras; - reads paths from stdin.")],
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model folder (default: the latest under models/).")] = None,
    precision: Annotated[Optional[Precision], typer.Option(help="fp32 means really f32. Default: int8 when present, else fp32.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=1000, help="Predictions per row.")] = 5,
    min_score: Annotated[Optional[float], typer.Option("--min-score", min=0.0, max=1.0, help="Top-1 scores below this get the label 'unknown' (status ok, scores kept). Default: the threshold `edgeclass train` stored in the model, else off; 0 turns it off.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Results file: .csv, .jsonl or .parquet (default: CSV on stdout).")] = None,
    output_format: Annotated[Optional[OutputFormat], typer.Option("--format", help="Results format, instead of the --output extension.")] = None,
    resume: Annotated[bool, typer.Option(help="Skip inputs already in --output (same path, size, mtime); append new rows.")] = False,
    redo_other_models: Annotated[bool, typer.Option("--redo-other-models", help="With --resume: classify again the inputs whose rows came from another model (or from before model ids); their old rows are replaced.")] = False,
    rescan: Annotated[bool, typer.Option("--rescan", help="With --resume: list every folder, also those unchanged since a run found everything in them done (a file replaced in place is then found; this happens by itself once a day).")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Cap on CPU cores used (inference threads and decode workers).")] = None,
    max_failures: Annotated[int, typer.Option(min=0, help="Failed inputs tolerated before the exit code is 1.")] = 0,
    max_runtime: Annotated[Optional[float], typer.Option(min=0.0, help="Stop cleanly after this many seconds (exit 124).")] = None,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse images declaring more pixels (decompression bombs).")] = 100_000_000,
    reduced_decode: Annotated[bool, typer.Option("--reduced-decode/--full-decode", help="Decode large JPEGs (and convert large video frames) at 1/2, 1/4, 1/8 scale (faster).")] = True,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Compiled-model cache (default ~/.cache/edgeclass/ov_cache).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not cache compiled models.")] = False,
    summary_json: Annotated[Optional[Path], typer.Option(help="Write counts, timing and model as JSON here.")] = None,
    metrics_file: Annotated[Optional[Path], typer.Option(help="Prometheus metrics for node_exporter's textfile collector (name it *.prom): rows by status, duration, exit code, last success, model, live sources up/frames/reconnects; replaced atomically every 15 s and at the end.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    verbose: Verbose = False,
    every: Annotated[float, typer.Option(min=0.001, help="Videos/streams: one frame per this many seconds of media time.", rich_help_panel="Video and streams")] = 1.0,
    every_frame: Annotated[Optional[int], typer.Option(min=1, help="Video files: one frame every N frames (instead of --every).", rich_help_panel="Video and streams")] = None,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="Live sources: stop after N frame rows written.", rich_help_panel="Video and streams")] = None,
    keyframes: Annotated[bool, typer.Option("--keyframes", help="Decode and classify key frames only (fast archive triage, cheap cameras); samples fall on the first key frame after each --every.", rich_help_panel="Video and streams")] = False,
    frozen_after: Annotated[float, typer.Option(min=0.0, help="Live sources: the same picture this many seconds is a 'frozen' row (0: off).", rich_help_panel="Video and streams")] = 60.0,
    blank_after: Annotated[float, typer.Option(min=0.0, help="Live sources: a nearly uniform picture (covered lens, black, white-out: 98% of its sampled brightness within 24 grey levels) this many seconds is a 'blank' row; not classified until the picture returns (0: off).", rich_help_panel="Video and streams")] = 60.0,
    duration: Annotated[Optional[float], typer.Option(min=0.0, help="Live sources: stop after this many seconds.", rich_help_panel="Video and streams")] = None,
    open_timeout: Annotated[float, typer.Option(min=0.1, help="Live sources: seconds to wait for a connection.", rich_help_panel="Video and streams")] = 10.0,
    read_timeout: Annotated[float, typer.Option(min=0.1, help="Live sources: seconds without a frame before reconnecting.", rich_help_panel="Video and streams")] = 10.0,
    reconnects: Annotated[int, typer.Option(min=0, help="Live sources: reconnect attempts (exponential backoff) before giving up.", rich_help_panel="Video and streams")] = 5,
    rtsp_tcp: Annotated[bool, typer.Option("--rtsp-tcp", help="RTSP over TCP (interleaved) instead of UDP.", rich_help_panel="Video and streams")] = False,
    show_summary: Annotated[bool, typer.Option("--summary", help="Per video/stream: the label winning most sampled frames, and its share (printed even with -q).", rich_help_panel="Video and streams")] = False,
    ray_address: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="Run on a Ray cluster: auto, local (one started for this run) or HOST:PORT. Needs pip install 'edgeclass\\[ray]'.", rich_help_panel="Many boxes (Ray)")] = None,
    ray_segment: Annotated[float, typer.Option(min=1.0, help="With --ray: seconds of media time per piece of a video file.", rich_help_panel="Many boxes (Ray)")] = 60.0,
    copy_into: Annotated[Optional[Path], typer.Option(help="Copy each classified image into DIR/<label>/ (below --min-score: DIR/_uncertain/).", rich_help_panel="Sorting files")] = None,
    link_into: Annotated[Optional[Path], typer.Option(help="Like --copy-into with symbolic links (--hardlink: hard links).", rich_help_panel="Sorting files")] = None,
    hardlink: Annotated[bool, typer.Option("--hardlink", help="With --link-into: hard links (same file system) instead of symbolic links.", rich_help_panel="Sorting files")] = False,
    move: Annotated[bool, typer.Option("--move", help="With --copy-into: move the files instead of copying them.", rich_help_panel="Sorting files")] = False,
    publish: Annotated[list[str], typer.Option("--publish", metavar="URL", help="Also send every row, at least once, to mqtt://user@host:port/PREFIX (mqtts:// for TLS) or an https:// webhook; repeatable. Password: in the URL or EDGECLASS_PUBLISH_PASSWORD. Rows not delivered at the end: exit 1, kept for the next run (docs/publishing.md).", rich_help_panel="Publishing")] = [],  # noqa: B006
    publish_discovery: Annotated[bool, typer.Option("--publish-discovery", help="Home Assistant MQTT discovery: each source (camera, video, folder of snapshots) appears as a sensor, its label as state.", rich_help_panel="Publishing")] = False,
    publish_headers: Annotated[list[str], typer.Option("--publish-header", metavar="'NAME: VALUE'", help="A header sent to webhooks, e.g. 'Authorization: Bearer ...'; repeatable; never printed.", rich_help_panel="Publishing")] = [],  # noqa: B006
    publish_max_pending: Annotated[int, typer.Option(min=1, help="Rows kept waiting per --publish target while it is down; beyond, the oldest are dropped (counted and said; the output keeps them).", rich_help_panel="Publishing")] = 10_000,
) -> None:
    """Classify images (and videos, streams) and write CSV rows:

    source,frame,timestamp_ms,status,error,model,top1_id,top1_label,top1_score,...
    """
    from edgeclass.run.plan import classify, plan_run

    console = err_console()
    reporter = _CliReporter(console, quiet)
    try:
        try:
            plan = plan_run(
                inputs, model=model, precision=precision.value if precision else None, top_k=top_k,
                min_score=min_score, output=output, format=output_format.value if output_format else None,
                resume=resume, redo_other_models=redo_other_models, rescan=rescan, threads=threads,
                max_failures=max_failures,
                max_runtime=max_runtime, max_pixels=max_pixels, reduced_decode=reduced_decode, cache_dir=cache_dir,
                no_cache=no_cache, summary_json=summary_json, metrics_file=metrics_file, quiet_libraries=not verbose,
                every=every, every_frame=every_frame, max_frames=max_frames, keyframes=keyframes,
                frozen_after=frozen_after, blank_after=blank_after, duration=duration, open_timeout=open_timeout,
                read_timeout=read_timeout, reconnects=reconnects, rtsp_tcp=rtsp_tcp, ray=ray_address,
                ray_segment=ray_segment, copy_into=copy_into, link_into=link_into, hardlink=hardlink, move=move,
                publish=tuple(publish), publish_discovery=publish_discovery, publish_headers=tuple(publish_headers),
                publish_max_pending=publish_max_pending,
            )
            summary = classify(plan, reporter)
        finally:
            reporter.close()
    except EdgeclassError as exc:
        raise fail(console, exc) from exc
    _print_run_end(console, summary, quiet, show_summary)
    raise typer.Exit(summary.exit_code)


class _CliReporter:
    """The run's progress on stderr: a bar on a terminal, plain lines otherwise (cron), made when
    the model is open (:class:`edgeclass.cli.render.ProgressReporter`), after the model line."""

    def __init__(self, console: Console, quiet: bool):
        self.console, self.quiet = console, quiet
        self.progress: ProgressReporter | None = None

    def started(self, start: RunStart) -> None:
        from edgeclass.cli.render import ProgressReporter, is_interactive
        from edgeclass.media.inputs import count_images

        interactive = not self.quiet and is_interactive(self.console)  # -q: the console is not even made
        total = count_images(list(start.plan.options.inputs)) if interactive else None
        self.progress = ProgressReporter(self.console, total, interactive, self.quiet)
        _print_run_start(self.console, start, self.quiet)

    def result(self, result: Result) -> None:
        if self.progress is not None:
            self.progress.result(result)

    def event(self, message: str) -> None:
        if self.progress is not None:
            self.progress.event(message)
        elif not self.quiet:
            self.console.print(message, markup=False, highlight=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()


def _print_run_start(console: Console, start: RunStart, quiet: bool) -> None:
    """The model line, the FP32-fallback warning (even with -q: cron runs at half speed) and the
    INT8-measured-on-another-CPU-class warning (even with -q)."""
    md = start.plan.model_dir
    if start.plan.precision_defaulted and md.int8_refused:
        say(console, "warning:", f"running FP32: the INT8 model in {md.path} was refused by the INT8 gate "
             f"({md.int8_rejected_xml.name}; see `edgeclass info {md.path}`)")
    if start.accuracy_caveat:  # even with -q: the rows' accuracy is not known on this CPU
        say(console, "warning:", start.accuracy_caveat)
    if not quiet:
        console.print(
            f"model {start.model} ({md.path}, id {start.model_id}), precision {start.precision} "
            f"(inference {start.inference_precision})",
            highlight=False,
        )
        if start.cluster:
            console.print(start.cluster, highlight=False)


def _print_run_end(console: Console, summary, quiet: bool, show_summary: bool) -> None:
    """The per-source table (``--summary``), the closing counts line, and any note (even with -q,
    except after a -q run that --max-runtime stopped without a failed input: a backlog worked off
    over several cron runs must not mail the operator)."""
    if show_summary and summary.per_source:
        from edgeclass.cli.render import per_source_table

        console.print(per_source_table(summary.per_source))
    if quiet and summary.exit_code == EXIT_MAX_RUNTIME and summary.counts.failed == 0:
        return
    if not quiet or summary.exit_code != EXIT_OK:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.by_status.items())) or "nothing"
        line = f"done: {counts}; {summary.images_per_s:.1f} img/s in {summary.duration_s:.1f}s"
        if summary.counts.skipped_resume:
            line += f"; {summary.counts.skipped_resume} skipped (already in output)"
        if summary.counts.kept_other_models:
            line += (f", {summary.counts.kept_other_models} of them by another model (kept; "
                     "--redo-other-models classifies them again)")
        if summary.stopped_by:
            line += f"; stopped by {summary.stopped_by}"
        console.print(line, highlight=False)
    if summary.note:
        say(console, "note:", summary.note)


