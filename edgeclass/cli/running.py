"""`run` and `bench`: classifying, and measuring."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from edgeclass.errors import EXIT_OK, EdgeclassError
from edgeclass.cli.app import EXIT_CODES_HELP, app, err_console, fail, out_console, say
from edgeclass.cli.options import OutputFormat, Precision, Verbose

if TYPE_CHECKING:
    from rich.console import Console


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
def _sort_options(copy_into: Path | None, link_into: Path | None, hardlink: bool, move: bool):
    """--copy-into/--link-into/--hardlink/--move -> SortOptions (or None); usage errors exit 2."""
    from edgeclass.run.sorting import SortOptions

    if copy_into and link_into:
        raise EdgeclassError("--copy-into and --link-into: choose one")
    if move and not copy_into:
        raise EdgeclassError("--move goes with --copy-into DIR (files are only moved when asked)")
    if hardlink and not link_into:
        raise EdgeclassError("--hardlink goes with --link-into DIR")
    if copy_into:
        return SortOptions(copy_into, "move" if move else "copy")
    if link_into:
        return SortOptions(link_into, "hardlink" if hardlink else "symlink")
    return None


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
    ray_address: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="Run on a Ray cluster: auto, local (one started for this run) or HOST:PORT. Needs pip install 'edgeclass[ray]'.", rich_help_panel="Many boxes (Ray)")] = None,
    ray_segment: Annotated[float, typer.Option(min=1.0, help="With --ray: seconds of media time per piece of a video file.", rich_help_panel="Many boxes (Ray)")] = 60.0,
    copy_into: Annotated[Optional[Path], typer.Option(help="Copy each classified image into DIR/<label>/ (below --min-score: DIR/_uncertain/).", rich_help_panel="Sorting files")] = None,
    link_into: Annotated[Optional[Path], typer.Option(help="Like --copy-into with symbolic links (--hardlink: hard links).", rich_help_panel="Sorting files")] = None,
    hardlink: Annotated[bool, typer.Option("--hardlink", help="With --link-into: hard links (same file system) instead of symbolic links.", rich_help_panel="Sorting files")] = False,
    move: Annotated[bool, typer.Option("--move", help="With --copy-into: move the files instead of copying them.", rich_help_panel="Sorting files")] = False,
) -> None:
    """Classify images (and videos, streams) and write CSV rows:

    source,frame,timestamp_ms,status,error,model,top1_id,top1_label,top1_score,...
    """
    from edgeclass.media.imageheader import set_opencv_pixel_limit

    set_opencv_pixel_limit(max_pixels)  # before anything imports cv2: OpenCV reads it once
    if not verbose:
        from edgeclass.media.quiet import quiet_native_logging

        quiet_native_logging()
    from edgeclass.media.decode import DecodeOptions
    from edgeclass.media.video import VideoOptions
    from edgeclass.run.ledger import check_outputs
    from edgeclass.run.metrics import check_metrics_file, write_failed_run, write_run_metrics
    from edgeclass.run.runner import RunOptions, write_summary_json

    console = err_console()
    metrics_checked, t0 = False, time.time()
    try:
        metrics_checked = check_metrics_file(metrics_file)
        check_outputs(output, output_format.value if output_format else None, resume, summary_json)  # before any work
        if keyframes and every_frame:
            raise EdgeclassError("--keyframes samples by time (--every); it cannot be combined with --every-frame")
        if redo_other_models and not resume:
            raise EdgeclassError("--redo-other-models goes with --resume (it redoes rows already in --output)")
        options = RunOptions(
            inputs=tuple(inputs),
            output=output,
            top_k=top_k,
            resume=resume,
            max_failures=max_failures,
            workers=threads or len(os.sched_getaffinity(0)),
            decode=DecodeOptions(max_pixels=max_pixels, reduced_decode=reduced_decode),
            video=VideoOptions(every_s=every, every_frame=every_frame, max_frames=max_frames, duration_s=duration,
                               open_timeout_s=open_timeout, read_timeout_s=read_timeout, reconnects=reconnects,
                               rtsp_tcp=rtsp_tcp, keyframes=keyframes, frozen_after_s=frozen_after,
                               blank_after_s=blank_after, reduced=reduced_decode, decoder_threads=threads or 0),
            format=output_format.value if output_format else None,
            min_score=min_score,
            sort=_sort_options(copy_into, link_into, hardlink, move),
            redo_other_models=redo_other_models,
            metrics_file=metrics_file,
            quiet_libraries=not verbose,
        )
        summary = _classify(console, options, _RunPlace(model, precision, threads, cache_dir, no_cache, ray_address,
                                                       ray_segment), max_runtime, quiet)
        if summary_json is not None:
            write_summary_json(summary_json, summary)
        if metrics_file is not None:
            write_run_metrics(metrics_file, summary)
    except EdgeclassError as exc:
        if metrics_checked:
            write_failed_run(metrics_file, exc.exit_code, t0)
        raise fail(console, exc) from exc
    _print_run_end(console, summary, quiet, show_summary)
    raise typer.Exit(summary.exit_code)


@dataclass(frozen=True)
class _RunPlace:
    """Where `run` classifies: which model, at which precision and threads, on this box or Ray."""

    model: Path | None
    precision: Precision | None
    threads: int | None
    cache_dir: Path | None
    no_cache: bool
    ray_address: str | None
    ray_segment: float


def _classify(console: Console, options, place: _RunPlace, max_runtime: float | None, quiet: bool):
    """Open the model (here or on a Ray cluster) and run ``options`` to its summary."""
    from edgeclass.engine import Classifier, EngineOptions, default_cache_dir
    from edgeclass.media.inputs import count_images
    from edgeclass.media.workers import prepare_decode_workers
    from edgeclass.modelfiles.folder import resolve_model_dir
    from edgeclass.cli.render import ProgressReporter, is_interactive
    from edgeclass.run.runner import run as do_run
    from edgeclass.run.stopping import graceful_stop

    with ExitStack() as stack:
        if place.ray_address is not None:
            from edgeclass.run.distributed import RayRun, check_request

            check_request(place.ray_address, options.inputs)  # Ray installed, address well-formed, no live sources
        md = resolve_model_dir(place.model)
        engine = EngineOptions(
            precision=place.precision.value if place.precision else None,
            threads=place.threads,
            cache_dir=None if place.no_cache else (place.cache_dir or default_cache_dir()),
        )
        cluster = (stack.enter_context(RayRun(place.ray_address, md, engine, place.ray_segment))
                   if place.ray_address else None)
        classifier = cluster.model if cluster else stack.enter_context(Classifier(md, engine))
        prepare_decode_workers(place.threads)  # --threads caps OpenCV's pool; freed memory reused
        interactive = not quiet and is_interactive(console)  # -q: the console is not even made
        total = count_images(options.inputs) if interactive and not quiet else None
        reporter = ProgressReporter(console, total, interactive, quiet)
        _print_run_start(console, md, classifier, cluster, place.precision is None, quiet)
        try:
            with graceful_stop(max_runtime) as stop:
                if cluster:
                    return cluster.summarize(do_run(classifier, options, stop, reporter, execute=cluster.execute))
                return do_run(classifier, options, stop, reporter)
        finally:
            reporter.close()


def _print_run_start(console: Console, md, classifier, cluster, default_precision: bool, quiet: bool) -> None:
    """The model line, and the FP32-fallback warning (even with -q: cron runs at half speed)."""
    if default_precision and md.int8_refused:
        say(console, "warning:", f"running FP32: the INT8 model in {md.path} was refused by the INT8 gate "
             f"({md.int8_rejected_xml.name}; see `edgeclass info {md.path}`)")
    if not quiet:
        console.print(
            f"model {classifier.metadata.model_name} ({md.path}, id {classifier.model_id}), precision {classifier.precision} "
            f"(inference {classifier.inference_precision})",
            highlight=False,
        )
        if cluster:
            console.print(cluster.describe(), highlight=False)


def _print_run_end(console: Console, summary, quiet: bool, show_summary: bool) -> None:
    """The per-source table (``--summary``), the closing counts line, and any note (even with -q)."""
    if show_summary and summary.per_source:
        from edgeclass.cli.render import per_source_table

        console.print(per_source_table(summary.per_source))
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


