"""The ``edgeclass`` command: parses options, calls the library, renders. No work happens here."""

from __future__ import annotations

import enum
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass
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
class PresetChoice(str, enum.Enum):
    performance = "performance"
    mixed = "mixed"


class ModelTypeChoice(str, enum.Enum):
    transformer = "transformer"
    cnn = "cnn"


class Interpolation(str, enum.Enum):
    bicubic = "bicubic"
    bilinear = "bilinear"


SubsetSize = Annotated[int, typer.Option(help="Calibration images used at most (NNCF subset_size).", min=1)]
Preset = Annotated[PresetChoice, typer.Option(help="NNCF preset: performance (symmetric) or mixed (asymmetric activations).")]
FastBias = Annotated[
    bool,
    typer.Option("--fast-bias-correction/--no-fast-bias-correction", help="Fast or full NNCF bias correction."),
]
ModelType = Annotated[ModelTypeChoice, typer.Option(help="NNCF model type.")]
Ignore = Annotated[list[str], typer.Option("--ignore", help="Keep this node (by name) in float. Repeatable.")]
IgnoreType = Annotated[
    list[str], typer.Option("--ignore-type", help="Keep nodes of this OpenVINO type (e.g. Multiply) in float. Repeatable.")
]
SmoothQuant = Annotated[
    Optional[float], typer.Option(min=0.0, max=1.0, help="SmoothQuant alpha for convolutions (default: off).")
]
MaxDrop = Annotated[
    float,
    typer.Option(min=0.0, max=100.0,
                 help="INT8 gate with a labelled --validation folder: refuse INT8 when its top-1 accuracy drop, "
                      "in points, is above this even at the 95% interval's lower bound."),
]
MaxExpectedDrop = Annotated[
    float,
    typer.Option(min=0.0, max=100.0,
                 help="INT8 gate without labels: refuse INT8 when its expected accuracy drop (FP32's probabilities "
                      "as soft labels), in points, is above this even at the 95% interval's lower bound."),
]
Validation = Annotated[
    Optional[Path],
    typer.Option(help="Images to check INT8 on (default: the calibration folder's own). Sub-folders named by label "
                      "or class id make it labelled: accuracy drop, and accuracy control when INT8 misses --max-drop."),
]


@dataclass(frozen=True)
class QuantizeFlags:
    """The quantize options shared by `convert` and `quantize`, as parsed."""

    subset_size: int
    preset: PresetChoice
    fast_bias_correction: bool
    model_type: ModelTypeChoice
    ignore: list[str]
    ignore_type: list[str]
    smooth_quant_alpha: float | None
    max_drop: float
    max_expected_drop: float
    validation: Path | None

    def options(self):
        from edgeclass.model.quantize import QuantizeOptions

        return QuantizeOptions(
            subset_size=self.subset_size,
            preset=self.preset.value,
            fast_bias_correction=self.fast_bias_correction,
            model_type=self.model_type.value,
            ignored_names=tuple(self.ignore or ()),
            ignored_types=tuple(self.ignore_type or ()),
            smooth_quant_alpha=self.smooth_quant_alpha,
            max_drop=self.max_drop / 100.0,
            max_expected_drop=self.max_expected_drop / 100.0,
            validation=self.validation,
        )


def _print_quantize_report(console: Console, report) -> None:
    from edgeclass.report import agreement_table

    for w in report.warnings:
        _say(console, "warning:", w)
    console.print(agreement_table(report.gate.to_dict()))
    console.print(f"INT8 method: {report.method}", highlight=False)
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
    crop_pct: Annotated[Optional[float], typer.Option(min=0.05, max=1.0, help="Centre-crop fraction (default: the model's).")] = None,
    interpolation: Annotated[Optional[Interpolation], typer.Option(help="Resize filter (default: the model's).")] = None,
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="Also quantize to INT8 with NNCF.")] = True,
    calibration: Annotated[Path, typer.Option(help="Folder of calibration images.")] = Path("calibration"),
    subset_size: SubsetSize = 300,
    preset: Preset = PresetChoice.performance,
    fast_bias_correction: FastBias = False,
    model_type: ModelType = ModelTypeChoice.transformer,
    ignore: Ignore = [],  # noqa: B006 - typer needs a literal default
    ignore_type: IgnoreType = [],  # noqa: B006
    smooth_quant_alpha: SmoothQuant = None,
    max_drop: MaxDrop = 1.0,
    max_expected_drop: MaxExpectedDrop = 1.0,
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
        interpolation=interpolation.value if interpolation else None,
        int8=int8,
        calibration=calibration,
        quantize=QuantizeFlags(subset_size, preset, fast_bias_correction, model_type, ignore, ignore_type,
                               smooth_quant_alpha, max_drop, max_expected_drop, validation).options(),
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
    preset: Preset = PresetChoice.performance,
    fast_bias_correction: FastBias = False,
    model_type: ModelType = ModelTypeChoice.transformer,
    ignore: Ignore = [],  # noqa: B006
    ignore_type: IgnoreType = [],  # noqa: B006
    smooth_quant_alpha: SmoothQuant = None,
    max_drop: MaxDrop = 1.0,
    max_expected_drop: MaxExpectedDrop = 1.0,
    validation: Validation = None,
) -> None:
    """Quantize an FP32 IR to INT8 with NNCF (no torch needed), then check it against FP32."""
    from edgeclass.model.modeldir import resolve_model_dir
    from edgeclass.model.quantize import quantize_model_dir

    console = _console()
    options = QuantizeFlags(subset_size, preset, fast_bias_correction, model_type, ignore, ignore_type,
                            smooth_quant_alpha, max_drop, max_expected_drop, validation).options()
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

    from edgeclass.model.export import read_ir
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
                meta = read_metadata(read_ir(core, xml))  # a damaged IR is a ModelError (exit 3)
                console.print(metadata_table(meta, f"{xml.name}"))
                shown = True
        if not shown:
            raise EdgeclassError(f"no IR in {md.path}")
    except EdgeclassError as exc:
        raise _fail(_console(), exc) from exc
    _print_training_report(console, md.path)  # `edgeclass train` folders: held-out summary
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
class Precision(str, enum.Enum):
    int8 = "int8"
    fp32 = "fp32"
    bf16 = "bf16"


class OutputFormat(str, enum.Enum):
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"


def _check_run_outputs(output: Path | None, output_format, resume: bool, summary_json: Path | None) -> None:
    """Everything `run` will write is checked before the model is loaded or an input read."""
    from edgeclass.run.output import format_for, format_module
    from edgeclass.run.sink import check_output

    if resume and output is None:
        raise EdgeclassError("--resume needs --output FILE")
    fmt = format_for(output, output_format.value if output_format else None)
    format_module(fmt)  # the parquet extra, when asked for
    if output is None and fmt == "parquet":
        raise EdgeclassError("--format parquet needs --output FILE")
    check_output(output)
    check_output(summary_json, "--summary-json", create_parent=False)


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
    threads: Annotated[Optional[int], typer.Option(min=1, help="Cap on CPU cores used (inference threads and decode workers).")] = None,
    max_failures: Annotated[int, typer.Option(min=0, help="Failed inputs tolerated before the exit code is 1.")] = 0,
    max_runtime: Annotated[Optional[float], typer.Option(min=0.0, help="Stop cleanly after this many seconds (exit 124).")] = None,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse images declaring more pixels (decompression bombs).")] = 100_000_000,
    reduced_decode: Annotated[bool, typer.Option("--reduced-decode/--full-decode", help="Decode large JPEGs (and convert large video frames) at 1/2, 1/4, 1/8 scale (faster).")] = True,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Compiled-model cache (default ~/.cache/edgeclass/ov_cache).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not cache compiled models.")] = False,
    summary_json: Annotated[Optional[Path], typer.Option(help="Write counts, timing and model as JSON here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    every: Annotated[float, typer.Option(min=0.001, help="Videos/streams: one frame per this many seconds of media time.", rich_help_panel="Video and streams")] = 1.0,
    every_frame: Annotated[Optional[int], typer.Option(min=1, help="Video files: one frame every N frames (instead of --every).", rich_help_panel="Video and streams")] = None,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="Live sources: stop after N frame rows written.", rich_help_panel="Video and streams")] = None,
    keyframes: Annotated[bool, typer.Option("--keyframes", help="Decode and classify key frames only (fast archive triage, cheap cameras); samples fall on the first key frame after each --every.", rich_help_panel="Video and streams")] = False,
    frozen_after: Annotated[float, typer.Option(min=0.0, help="Live sources: the same picture this many seconds is a 'frozen' row (0: off).", rich_help_panel="Video and streams")] = 60.0,
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

    source,frame,timestamp_ms,status,error,top1_id,top1_label,top1_score,...
    """
    from edgeclass.media.imageheader import set_opencv_pixel_limit

    set_opencv_pixel_limit(max_pixels)  # before anything imports cv2: OpenCV reads it once
    from edgeclass.media.decode import DecodeOptions
    from edgeclass.engine import Classifier, EngineOptions, default_cache_dir
    from edgeclass.model.modeldir import resolve_model_dir
    from edgeclass.report import ProgressReporter, is_interactive
    from edgeclass.run.runner import RunOptions, run as do_run, write_summary_json
    from edgeclass.media.inputs import count_images
    from edgeclass.run.stopping import graceful_stop
    from edgeclass.media.video import VideoOptions
    from edgeclass.media.preprocess import limit_opencv_threads

    console = _console()
    stack = ExitStack()
    try:
        _check_run_outputs(output, output_format, resume, summary_json)  # before any work
        sort = _sort_options(copy_into, link_into, hardlink, move)
        if keyframes and every_frame:
            raise EdgeclassError("--keyframes samples by time (--every); it cannot be combined with --every-frame")
        if ray_address is not None:
            from edgeclass.run.distributed import RayRun, check_request

            check_request(ray_address, inputs)  # Ray installed, address well-formed, no live sources
        md = resolve_model_dir(model)
        engine = EngineOptions(
            precision=precision.value if precision else None,
            threads=threads,
            cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        )
        cluster = stack.enter_context(RayRun(ray_address, md, engine, ray_segment)) if ray_address else None
        classifier = cluster.model if cluster else stack.enter_context(Classifier(md, engine))
        workers = threads or len(os.sched_getaffinity(0))
        limit_opencv_threads(threads)  # --threads caps OpenCV's pool too
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
                               rtsp_tcp=rtsp_tcp, keyframes=keyframes, frozen_after_s=frozen_after,
                               reduced=reduced_decode),
            format=output_format.value if output_format else None,
            min_score=min_score,
            sort=sort,
        )
        interactive = is_interactive(console)
        total = count_images(inputs) if interactive and not quiet else None
        reporter = ProgressReporter(console, total, interactive, quiet)
        _print_run_start(console, md, classifier, cluster, precision is None, quiet)
        try:
            with graceful_stop(max_runtime) as stop:
                if cluster:
                    summary = cluster.summarize(do_run(classifier, options, stop, reporter, execute=cluster.execute))
                else:
                    summary = do_run(classifier, options, stop, reporter)
        finally:
            reporter.close()
    except EdgeclassError as exc:
        raise _fail(console, exc) from exc
    finally:
        stack.close()
    if summary_json is not None:
        try:
            write_summary_json(summary_json, summary)
        except EdgeclassError as exc:
            raise _fail(console, exc) from exc
    _print_run_end(console, summary, quiet, show_summary)
    raise typer.Exit(summary.exit_code)


def _print_run_start(console: Console, md, classifier, cluster, default_precision: bool, quiet: bool) -> None:
    """The model line, and the FP32-fallback warning (even with -q: cron runs at half speed)."""
    if default_precision and md.int8_refused:
        _say(console, "warning:", f"running FP32: the INT8 model in {md.path} was refused by the INT8 gate "
             f"({md.int8_rejected_xml.name}; see `edgeclass info {md.path}`)")
    if not quiet:
        console.print(
            f"model {classifier.metadata.model_name} ({md.path}), precision {classifier.precision} "
            f"(inference {classifier.inference_precision})",
            highlight=False,
        )
        if cluster:
            console.print(cluster.describe(), highlight=False)


def _print_run_end(console: Console, summary, quiet: bool, show_summary: bool) -> None:
    """The per-source table (``--summary``), the closing counts line, and any note (even with -q)."""
    if show_summary and summary.per_source:
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
    if summary.note:
        _say(console, "note:", summary.note)


# ----------------------------------------------------------------------------- train
class TrainMode(str, enum.Enum):
    probe = "probe"
    finetune = "finetune"


def _pct(value) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _training_table(report: dict):
    """Held-out summary of an `edgeclass train` report (report.json)."""
    from rich.table import Table

    h, t = report["heldout"], report["heldout"]["threshold"]
    table = Table(title="held-out evaluation (edgeclass train)", title_justify="left")
    for col in ("class", "precision", "recall", "images", "most often taken for"):
        table.add_column(col, justify="left" if col in ("class", "most often taken for") else "right")
    for i, row in enumerate(h["per_class"]):
        wrong = [(n, report["labels"][j]) for j, n in enumerate(h["confusion"][i]) if j != i and n]
        taken = f"{max(wrong)[1]} ({max(wrong)[0]})" if wrong else ""
        table.add_row(escape(row["label"]), _pct(row["precision"]), _pct(row["recall"]), str(row["support"]), escape(taken))
    table.caption = (f"temperature {report['calibration']['temperature']:.3f}; default --min-score {t['value']:.3f}: "
                     f"{t['unknown']} of {h['images']} held-out images 'unknown', accuracy of the rest {_pct(t['accuracy_kept'])}; "
                     f"{len(report.get('skipped') or [])} images skipped; details in report.html")
    return table


def _print_training_report(console: Console, model_dir: Path) -> None:
    from edgeclass.model.train.evaluate_report import read_report

    report = read_report(model_dir)
    if report is not None:
        _print_training_summary(console, report)


def _print_training_summary(console: Console, report: dict) -> None:
    h = report["heldout"]
    console.print(f"trained ({report['mode']}) on {report['dataset']}: held-out accuracy {_pct(h['accuracy'])} on "
                  f"{h['images']} images, {report['evaluated_precision']} model", highlight=False, soft_wrap=True)
    console.print(_training_table(report))


@app.command()
def train(
    dataset: Annotated[Path, typer.Argument(help="Folder with one sub-folder of images per class (ImageFolder); optional val/ is the held-out split.")],
    model: Annotated[str, typer.Option("--model", "-m", help="timm MobileViTv2 backbone.")] = "mobilevitv2_075.cvnets_in1k",
    weights: Annotated[Optional[Path], typer.Option(help="Backbone checkpoint (.safetensors, .pth, .pt) instead of the hub; its head is dropped.")] = None,
    random_init: Annotated[bool, typer.Option("--random-init", help="Random backbone weights when no pretrained ones are available (weak features).")] = False,
    backbone: Annotated[Optional[Path], typer.Option(help="probe: use this model folder's FP32 IR (from convert or train) as the backbone, its head cut off: no torch needed.")] = None,
    mode: Annotated[TrainMode, typer.Option(help="probe: a linear head on frozen OpenVINO features (fast); finetune: the whole network in torch.")] = TrainMode.probe,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Model folder (default models/<dataset folder name>/).")] = None,
    input_size: Annotated[Optional[int], typer.Option(min=32, help="Square input size (default: the model's).")] = None,
    crop_pct: Annotated[Optional[float], typer.Option(min=0.05, max=1.0, help="Centre-crop fraction (default: the model's).")] = None,
    interpolation: Annotated[Optional[Interpolation], typer.Option(help="Resize filter (default: the model's).")] = None,
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="Also quantize to INT8 (gate: the held-out split).")] = True,
    max_drop: MaxDrop = 1.0,
    c: Annotated[float, typer.Option("--c", min=1e-6, help="probe: inverse L2 strength of the logistic regression.")] = 1.0,
    epochs: Annotated[int, typer.Option(min=1, help="finetune: at most this many epochs.")] = 15,
    patience: Annotated[int, typer.Option(min=1, help="finetune: stop after this many epochs without a better held-out loss.")] = 3,
    batch_size: Annotated[int, typer.Option(min=1, help="finetune: images per step.")] = 32,
    lr: Annotated[float, typer.Option(min=1e-8, help="finetune: peak learning rate (AdamW, one-cycle).")] = 5e-4,
) -> None:
    """Train your own classes on a CPU: backbone -> linear head (or fine-tuning) -> FP32 + INT8 IR + report."""
    console = _console()
    if weights is not None and random_init:
        _say(console, "error:", "--weights and --random-init exclude each other", "red")
        raise typer.Exit(EXIT_USAGE)
    try:
        from edgeclass.model.train.trainer import FinetuneOptions, TrainOptions, train as do_train
    except ImportError as exc:
        _say(console, "error:", f"train needs the convert extra (torch, timm): pip install 'edgeclass[convert]' ({exc})", "red")
        raise typer.Exit(EXIT_USAGE) from exc
    from edgeclass.report import files_table

    options = TrainOptions(
        dataset=dataset, model=model, weights=weights, backbone=backbone, random_init=random_init, mode=mode.value, output=output,
        input_size=input_size, crop_pct=crop_pct, interpolation=interpolation.value if interpolation else None,
        int8=int8, max_drop=max_drop / 100.0, c=c,
        finetune=FinetuneOptions(epochs=epochs, patience=patience, batch_size=batch_size, lr=lr),
    )
    report = _with_status(
        console, "starting", lambda update: do_train(options, progress=lambda stage, msg: update(f"[bold]{stage}[/]: {escape(msg)}"))
    )
    for w in report.warnings:
        _say(console, "warning:", w)
    if report.quantize is not None:
        console.print(f"INT8: {'kept' if report.gate_error is None else 'refused'} ({report.quantize.xml.name})", highlight=False)
    _print_training_summary(console, report.report)
    console.print(files_table(report.files))
    console.print("times: " + ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
                  + f"\nmodel folder: {report.model_dir.path}", highlight=False)
    if report.gate_error is not None:
        raise _fail(console, report.gate_error)


def entrypoint() -> None:  # console script
    app()


if __name__ == "__main__":
    sys.exit(app())
