"""The ``edgeclass`` command: parses options, calls the library, renders. No work happens here."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from edgeclass import __version__
from edgeclass.errors import EXIT_OK, EXIT_USAGE, EdgeclassError

EXIT_CODES_HELP = """
Exit codes: 0 all inputs ok; 1 some inputs failed (more than --max-failures);
2 usage error; 3 model error; 4 calibration error; 5 INT8 accuracy gate failed;
6 output error (unwritable, disk full); 7 another run holds the output lock;
124 stopped by --max-runtime; 130 SIGINT; 143 SIGTERM.
"""

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Classify images, videos and streams with MobileViTv2 on CPUs, with OpenVINO.",
    epilog=EXIT_CODES_HELP,
)


def _console() -> Console:
    # soft_wrap: messages stay on one line (greppable in cron logs); tables still fit the width
    return Console(stderr=True, soft_wrap=True)


def _say(console: Console, prefix: str, message: str, style: str = "yellow") -> None:
    console.print(f"[{style}]{prefix}[/] {escape(str(message))}", highlight=False)


def _fail(console: Console, exc: EdgeclassError) -> typer.Exit:
    _say(console, "error:", str(exc), "red")
    return typer.Exit(exc.exit_code)


def _version(value: bool) -> None:
    if value:
        print(f"edgeclass {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """edgeclass: MobileViTv2 image classification on CPU-only edge boxes."""


# ----------------------------------------------------------------------------- quantize options
SubsetSize = Annotated[int, typer.Option(help="Calibration images used at most (NNCF subset_size).", min=1)]
Preset = Annotated[str, typer.Option(help="NNCF preset: mixed (asymmetric activations) or performance.")]
FastBias = Annotated[
    bool,
    typer.Option("--fast-bias-correction/--no-fast-bias-correction", help="Fast or full NNCF bias correction."),
]
ModelType = Annotated[str, typer.Option(help="NNCF model type: transformer or cnn.")]
Ignore = Annotated[list[str], typer.Option("--ignore", help="Keep this node (by name) in float. Repeatable.")]
IgnoreType = Annotated[
    list[str], typer.Option("--ignore-type", help="Keep nodes of this OpenVINO type (e.g. Multiply) in float. Repeatable.")
]
MaxDrop = Annotated[
    float,
    typer.Option(
        help="INT8 gate, in points: maximum top-1 accuracy drop (labelled validation) or disagreement with FP32.",
        min=0.0,
    ),
]
Validation = Annotated[
    Optional[Path],
    typer.Option(help="Held-out images for the INT8 check; sub-folders named by label or class id add accuracy."),
]


def _quantize_options(subset_size, preset, fast_bias_correction, model_type, ignore, ignore_type, max_drop, validation):
    from edgeclass.model.quantize import QuantizeOptions

    return QuantizeOptions(
        subset_size=subset_size,
        preset=preset,
        fast_bias_correction=fast_bias_correction,
        model_type=model_type,
        ignored_names=tuple(ignore or ()),
        ignored_types=tuple(ignore_type or ()),
        max_drop=max_drop / 100.0,
        validation=validation,
    )


def _print_quantize_report(console: Console, report) -> None:
    from edgeclass.report import agreement_table

    for w in report.warnings:
        _say(console, "warning:", w)
    if report.agreement is not None:
        from edgeclass.model.modelinfo import read_metadata
        import openvino as ov

        meta = read_metadata(ov.Core().read_model(report.xml))
        console.print(agreement_table(meta.accuracy))
    if report.reverted:
        console.print(f"kept in float by accuracy control: {', '.join(report.reverted)}", highlight=False)


def _with_status(console: Console, title: str, work):
    """Run ``work(update)`` under a spinner; errors become messages and exit codes. A failed
    INT8 gate still shows its measurements."""
    from edgeclass.errors import AccuracyGateError

    with console.status(title) as status:
        try:
            return work(status.update)
        except EdgeclassError as exc:
            status.stop()
            if isinstance(exc, AccuracyGateError) and getattr(exc, "report", None) is not None:
                _print_quantize_report(console, exc.report)
            raise _fail(console, exc) from exc


# ----------------------------------------------------------------------------- convert
@app.command()
def convert(
    model: Annotated[str, typer.Option("--model", "-m", help="timm MobileViTv2 name, e.g. mobilevitv2_075.cvnets_in1k.")] = "mobilevitv2_075.cvnets_in1k",
    weights: Annotated[Optional[Path], typer.Option(help="Local checkpoint (.safetensors, .pth, .pt) instead of the hub.")] = None,
    labels: Annotated[Optional[Path], typer.Option(help="Class names, one per line, in class-index order.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Model folder (default models/<model>/).")] = None,
    input_size: Annotated[Optional[int], typer.Option(help="Square input size (default: the model's).")] = None,
    crop_pct: Annotated[Optional[float], typer.Option(help="Centre-crop fraction (default: the model's).")] = None,
    interpolation: Annotated[Optional[str], typer.Option(help="bicubic or bilinear (default: the model's).")] = None,
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="Also quantize to INT8 with NNCF.")] = True,
    calibration: Annotated[Path, typer.Option(help="Folder of calibration images.")] = Path("calibration"),
    subset_size: SubsetSize = 300,
    preset: Preset = "performance",
    fast_bias_correction: FastBias = False,
    model_type: ModelType = "transformer",
    ignore: Ignore = [],  # noqa: B006 - typer needs a literal default
    ignore_type: IgnoreType = [],  # noqa: B006
    max_drop: MaxDrop = 1.0,
    validation: Validation = None,
) -> None:
    """Convert MobileViTv2 (hub or checkpoint) to an OpenVINO FP32 IR, then quantize it to INT8."""
    console = _console()
    try:
        from edgeclass.model.convert import ConvertOptions, convert as do_convert
    except ImportError as exc:
        _say(console, "error:", f"convert needs the convert extra (torch, timm): pip install 'edgeclass[convert]' ({exc})", "red")
        raise typer.Exit(EXIT_USAGE) from exc
    from edgeclass.report import files_table, metadata_table

    options = ConvertOptions(
        model=model,
        weights=weights,
        labels=labels,
        output=output,
        input_size=input_size,
        crop_pct=crop_pct,
        interpolation=interpolation,
        int8=int8,
        calibration=calibration,
        quantize=_quantize_options(subset_size, preset, fast_bias_correction, model_type, ignore, ignore_type, max_drop, validation),
    )
    report = _with_status(
        console, "starting", lambda update: do_convert(options, progress=lambda stage, msg: update(f"[bold]{stage}[/]: {msg}"))
    )
    console.print(metadata_table(report.metadata, f"converted {report.metadata.model_name}"))
    if report.quantize is not None:
        _print_quantize_report(console, report.quantize)
    if report.int8_skipped_reason:
        _say(console, "INT8 skipped:", report.int8_skipped_reason)
    console.print(files_table(report.files))
    console.print(
        "times: " + ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items()) + f"\nmodel folder: {report.model_dir.path}",
        highlight=False,
    )


# ----------------------------------------------------------------------------- quantize
@app.command()
def quantize(
    model_dir: Annotated[Path, typer.Argument(help="Model folder holding model_fp32.xml.")],
    calibration: Annotated[Path, typer.Option(help="Folder of calibration images.")] = Path("calibration"),
    subset_size: SubsetSize = 300,
    preset: Preset = "performance",
    fast_bias_correction: FastBias = False,
    model_type: ModelType = "transformer",
    ignore: Ignore = [],  # noqa: B006
    ignore_type: IgnoreType = [],  # noqa: B006
    max_drop: MaxDrop = 1.0,
    validation: Validation = None,
) -> None:
    """Quantize an FP32 IR to INT8 with NNCF (no torch needed), then check it against FP32."""
    from edgeclass.model.modeldir import resolve_model_dir
    from edgeclass.model.quantize import quantize_model_dir

    console = _console()
    options = _quantize_options(subset_size, preset, fast_bias_correction, model_type, ignore, ignore_type, max_drop, validation)
    report = _with_status(
        console, "quantizing", lambda update: quantize_model_dir(resolve_model_dir(model_dir), calibration, options, progress=update)
    )
    _print_quantize_report(console, report)
    console.print(f"wrote {report.xml}", highlight=False)


# ----------------------------------------------------------------------------- info
@app.command()
def info(model_dir: Annotated[Optional[Path], typer.Argument(help="Model folder (default: latest under models/).")] = None) -> None:
    """Show a model folder: model, labels, input, IR files, calibration provenance, INT8 accuracy."""
    import openvino as ov

    from edgeclass.model.modeldir import resolve_model_dir
    from edgeclass.model.modelinfo import read_metadata
    from edgeclass.report import files_table, metadata_table

    console = Console()
    try:
        md = resolve_model_dir(model_dir)
        core = ov.Core()
        shown = False
        for xml in (md.fp32_xml, md.int8_xml, md.int8_rejected_xml):
            if xml.is_file():
                meta = read_metadata(core.read_model(xml))
                console.print(metadata_table(meta, f"{xml.name}"))
                shown = True
        if not shown:
            raise EdgeclassError(f"no IR in {md.path}")
    except EdgeclassError as exc:
        raise _fail(_console(), exc) from exc
    console.print(files_table(sorted(md.path.glob("model_*"))))


# ----------------------------------------------------------------------------- bench
@app.command()
def bench(
    folder: Annotated[Optional[Path], typer.Argument(help="Also measure end to end (decode included) on these images.")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model folder (default: the latest under models/).")] = None,
    precision: Annotated[list[str], typer.Option(help="fp32, bf16, int8; repeatable (default: all available).")] = [],  # noqa: B006
    seconds: Annotated[float, typer.Option(min=0.5, help="Measuring time per precision.")] = 5.0,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Cap on inference threads.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead of a table.")] = False,
) -> None:
    """Inference throughput (THROUGHPUT hint) and latency p50/p90/p99 (LATENCY hint) per precision."""
    import json

    from edgeclass.run.bench import bench as do_bench
    from edgeclass.model.modeldir import resolve_model_dir
    from edgeclass.report import bench_table

    console = _console()
    try:
        md = resolve_model_dir(model)
        with console.status("benchmarking") as status:
            report = do_bench(md, precision or None, seconds, threads, folder, progress=lambda m: status.update(m))
    except EdgeclassError as exc:
        raise _fail(console, exc) from exc
    if json_out:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        Console().print(bench_table(report))


# ----------------------------------------------------------------------------- run
@app.command(epilog=EXIT_CODES_HELP)
def run(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (recursive), videos, stream URLs, cameras; - reads paths from stdin.")],
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model folder (default: the latest under models/).")] = None,
    precision: Annotated[Optional[str], typer.Option(help="int8, fp32 (really f32) or bf16. Default: int8 when present, else fp32.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Predictions per row.")] = 5,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="CSV file (default: stdout).")] = None,
    resume: Annotated[bool, typer.Option(help="Skip inputs already in --output (same path, size, mtime); append new rows.")] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Cap on CPU cores used (inference threads and decode workers).")] = None,
    max_failures: Annotated[int, typer.Option(min=0, help="Failed inputs tolerated before the exit code is 1.")] = 0,
    max_runtime: Annotated[Optional[float], typer.Option(min=0.0, help="Stop cleanly after this many seconds (exit 124).")] = None,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse images declaring more pixels (decompression bombs).")] = 100_000_000,
    reduced_decode: Annotated[bool, typer.Option("--reduced-decode/--full-decode", help="Decode large JPEGs at 1/2, 1/4, 1/8 scale (faster).")] = True,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Compiled-model cache (default ~/.cache/edgeclass/ov_cache).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not cache compiled models.")] = False,
    summary_json: Annotated[Optional[Path], typer.Option(help="Write counts, timing and model as JSON here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    every: Annotated[float, typer.Option(min=0.001, help="Videos/streams: one frame per this many seconds of media time.", rich_help_panel="Video and streams")] = 1.0,
    every_frame: Annotated[Optional[int], typer.Option(min=1, help="Video files: one frame every N frames (instead of --every).", rich_help_panel="Video and streams")] = None,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="Live sources: stop after N sampled frames.", rich_help_panel="Video and streams")] = None,
    duration: Annotated[Optional[float], typer.Option(min=0.0, help="Live sources: stop after this many seconds.", rich_help_panel="Video and streams")] = None,
    open_timeout: Annotated[float, typer.Option(min=0.1, help="Live sources: seconds to wait for a connection.", rich_help_panel="Video and streams")] = 10.0,
    read_timeout: Annotated[float, typer.Option(min=0.1, help="Live sources: seconds without a frame before reconnecting.", rich_help_panel="Video and streams")] = 10.0,
    reconnects: Annotated[int, typer.Option(min=0, help="Live sources: reconnect attempts (exponential backoff) before giving up.", rich_help_panel="Video and streams")] = 5,
    rtsp_tcp: Annotated[bool, typer.Option("--rtsp-tcp", help="RTSP over TCP (interleaved) instead of UDP.", rich_help_panel="Video and streams")] = False,
    summary: Annotated[bool, typer.Option("--summary", help="Per video/stream: the label winning most sampled frames, and its share.", rich_help_panel="Video and streams")] = False,
) -> None:
    """Classify images (and videos, streams) and write CSV rows:

    source,frame,timestamp_ms,status,error,top1_id,top1_label,top1_score,...
    """
    from edgeclass.media.decode import DecodeOptions
    from edgeclass.engine import Classifier, EngineOptions, default_cache_dir
    from edgeclass.model.modeldir import resolve_model_dir
    from edgeclass.report import ProgressReporter, is_interactive
    from edgeclass.run.runner import RunOptions, run as do_run, write_summary_json
    from edgeclass.media.inputs import count_images
    from edgeclass.run.stopping import graceful_stop
    from edgeclass.media.video import VideoOptions

    console = _console()
    stack = ExitStack()
    try:
        if precision is not None and precision not in ("int8", "fp32", "bf16"):
            raise EdgeclassError(f"--precision must be int8, fp32 or bf16, got {precision!r}")
        md = resolve_model_dir(model)
        engine = EngineOptions(
            precision=precision,
            threads=threads,
            cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        )
        classifier = stack.enter_context(Classifier(md, engine))
        workers = threads or len(os.sched_getaffinity(0))
        options = RunOptions(
            inputs=tuple(inputs),
            output=output,
            top_k=top_k,
            resume=resume,
            max_failures=max_failures,
            workers=workers,
            decode=DecodeOptions(max_pixels=max_pixels, reduced_decode=reduced_decode),
            video=VideoOptions(every_s=every, every_frame=every_frame, max_frames=max_frames, duration_s=duration,
                               open_timeout_s=open_timeout, read_timeout_s=read_timeout, reconnects=reconnects,
                               rtsp_tcp=rtsp_tcp),
        )
        if resume and output is None:
            raise EdgeclassError("--resume needs --output FILE")
        interactive = is_interactive(console)
        total = count_images(inputs) if interactive and not quiet else None
        reporter = ProgressReporter(console, total, interactive, quiet)
        if not quiet:
            console.print(
                f"model {classifier.metadata.model_name} ({md.path}), precision {classifier.precision} "
                f"(inference {classifier.inference_precision})",
                highlight=False,
            )
        try:
            with graceful_stop(max_runtime) as stop:
                summary = do_run(classifier, options, stop, reporter)
        finally:
            reporter.close()
    except EdgeclassError as exc:
        raise _fail(console, exc) from exc
    finally:
        stack.close()
    if summary_json is not None:
        write_summary_json(summary_json, summary)
    if summary and summary.per_source:
        from edgeclass.report import per_source_table

        console.print(per_source_table(summary.per_source))
    if not quiet or summary.exit_code != EXIT_OK:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.by_status.items())) or "nothing"
        line = f"done: {counts}; {summary.images_per_s:.1f} img/s in {summary.duration_s:.1f}s"
        if summary.counts.skipped_resume:
            line += f"; {summary.counts.skipped_resume} skipped (already in output)"
        if summary.stopped_by:
            line += f"; stopped by {summary.stopped_by}"
        console.print(line, highlight=False)
    raise typer.Exit(summary.exit_code)


def entrypoint() -> None:  # console script
    app()


if __name__ == "__main__":
    sys.exit(app())
