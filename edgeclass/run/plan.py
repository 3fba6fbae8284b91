"""The library's front door for runs: ``plan_run(...) -> RunPlan``, then ``classify(plan) -> RunSummary``.

    plan = plan_run("photos/", model="models/current", output="out.csv")   # every check, every default
    summary = classify(plan, reporter)                                        # here, or on Ray

:func:`plan_run` takes the user's choices (the fields of :class:`RunChoices`, named as
``edgeclass run``'s options), does every up-front check, in the order the CLI always did them,
before a model is opened or an input read, and resolves every default once: a choice given wins,
else the model's own (resolved when the model is opened, once: the precision by the engine from
the model folder, ``min_score`` by the runner from the IR's metadata), else edgeclass's default.
:func:`classify` opens the model (on this box, or shipped to a Ray cluster), runs the plan to its
summary, and writes the summary JSON and the final metrics file. ``edgeclass run`` is
parse -> :func:`plan_run` -> :func:`classify` -> render (``edgeclass/cli/running.py``).

The up-front checks and the tests that cover them are listed in docs/architecture.md ("Bad input").
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, Union

# Nothing imported here may import OpenCV: plan_run sets its pixel limit first (read once, at import).
from edgeclass.errors import EdgeclassError, UsageError
from edgeclass.media.video.options import VideoOptions
from edgeclass.modelfiles.folder import PRECISIONS, ModelDir, resolve_model_dir
from edgeclass.run.metrics import check_metrics_file, write_failed_run, write_run_metrics
from edgeclass.run.sorting import SortOptions

if TYPE_CHECKING:
    from edgeclass.engine import EngineOptions
    from edgeclass.results import Result
    from edgeclass.run.context import RunOptions, RunSummary

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class RunChoices:
    """What the user chose, as given (``edgeclass run``'s options; None: not given)."""

    inputs: tuple[str, ...]
    model: PathLike | None = None  # model folder (None: the latest under models/)
    precision: str | None = None  # fp32, bf16, int8 (None: int8 when present, else fp32)
    top_k: int = 5
    min_score: float | None = None  # None: the threshold stored in the model, else off
    output: PathLike | None = None  # None: CSV on stdout
    format: str | None = None  # None: from the output's extension
    resume: bool = False
    redo_other_models: bool = False
    rescan: bool = False  # --resume: list every folder, even those unchanged since a run settled them
    threads: int | None = None  # None: every core this process may use
    max_failures: int = 0
    max_runtime: float | None = None
    max_pixels: int = 100_000_000
    reduced_decode: bool = True
    cache_dir: PathLike | None = None  # None: ~/.cache/edgeclass/ov_cache
    no_cache: bool = False
    summary_json: PathLike | None = None
    metrics_file: PathLike | None = None
    quiet_libraries: bool = False  # the decoding libraries' own stderr lines off (the CLI: unless --verbose)
    every: float = 1.0
    every_frame: int | None = None
    max_frames: int | None = None
    keyframes: bool = False
    frozen_after: float = 60.0
    blank_after: float = 60.0
    duration: float | None = None
    open_timeout: float = 10.0
    read_timeout: float = 10.0
    reconnects: int = 5
    rtsp_tcp: bool = False
    ray: str | None = None  # auto, local or HOST:PORT (None: this box)
    ray_segment: float = 60.0
    copy_into: PathLike | None = None
    link_into: PathLike | None = None
    hardlink: bool = False
    move: bool = False
    publish: tuple[str, ...] = ()  # --publish URLs: mqtt://, mqtts://, https:// (docs/publishing.md)
    publish_discovery: bool = False  # Home Assistant MQTT discovery
    publish_headers: tuple[str, ...] = ()  # 'Name: value' for webhooks (never printed)
    publish_max_pending: int = 10_000  # rows kept waiting per target; beyond, the oldest dropped


@dataclass(frozen=True)
class RayPlace:
    address: str  # auto, local or HOST:PORT
    segment_s: float = 60.0  # media time per piece of a video file


@dataclass(frozen=True)
class RunPlan:
    """A checked run, every default resolved: what :func:`classify` runs."""

    options: RunOptions
    model_dir: ModelDir
    engine: EngineOptions
    ray: RayPlace | None = None
    max_runtime: float | None = None
    summary_json: Path | None = None
    planned_at: float = 0.0  # time.time() when planned (a failed run's metrics say it)

    @property
    def precision_defaulted(self) -> bool:
        """No precision was chosen: the model folder's default (INT8 unless the gate refused it)."""
        return self.engine.precision is None


@dataclass(frozen=True)
class RunStart:
    """What :func:`classify` tells its reporter once the model is open, before the first input."""

    plan: RunPlan
    model: str  # the model's name
    model_id: str  # the `model` column of this run's rows
    precision: str
    inference_precision: str
    cluster: str | None = None  # the Ray cluster, described
    # why this INT8 model's recorded accuracy does not hold on this CPU class (said even with -q)
    accuracy_caveat: str | None = None


class RunReporter(Protocol):
    """What :func:`classify` tells as the run goes (:class:`Reporter`: one that says nothing)."""

    def started(self, start: RunStart) -> None: ...

    def result(self, result: Result) -> None: ...

    def event(self, message: str) -> None: ...


class Reporter:
    """A :class:`RunReporter` that says nothing: subclass it and override what you need."""

    def started(self, start: RunStart) -> None:
        """The model is open; the first input comes next."""

    def result(self, result: Result) -> None:
        """One row written (an image, or one sampled frame of a video or stream)."""

    def event(self, message: str) -> None:
        """A message for the user (a taken-over lock, a live source reconnecting, ...)."""


# ----------------------------------------------------------------------------- plan_run
def plan_run(inputs: PathLike | Iterable[PathLike], **choices: Any) -> RunPlan:
    """Check a run and resolve its defaults; ``choices``: the fields of :class:`RunChoices`.
    Raises :class:`~edgeclass.errors.EdgeclassError` (its ``exit_code`` is the CLI's) before any
    model is opened or input read. Sets OpenCV's pixel limit (``max_pixels``) for the process, and
    with ``quiet_libraries`` keeps the decoding libraries' own lines off stderr."""
    from edgeclass.media.imageheader import set_opencv_pixel_limit

    paths = (inputs,) if isinstance(inputs, (str, os.PathLike)) else tuple(inputs)
    c = RunChoices(inputs=tuple(os.fspath(p) for p in paths), **choices)
    set_opencv_pixel_limit(c.max_pixels)  # before anything imports cv2: OpenCV reads it once
    if c.quiet_libraries:
        from edgeclass.media.quiet import quiet_native_logging

        quiet_native_logging()
    planned_at = time.time()
    metrics_file = _path(c.metrics_file)
    metrics_checked = check_metrics_file(metrics_file)  # first: a later refusal is written there
    try:
        return _checked(c, planned_at)
    except EdgeclassError as exc:
        if metrics_file is not None and metrics_checked:
            write_failed_run(metrics_file, exc.exit_code, planned_at)
        raise


def _path(value: PathLike | None) -> Path | None:
    return None if value is None else Path(value)


_AT_LEAST = {"top_k": 1, "threads": 1, "max_failures": 0, "max_runtime": 0.0, "max_pixels": 1, "every": 0.001,
             "every_frame": 1, "max_frames": 1, "frozen_after": 0.0, "blank_after": 0.0, "duration": 0.0,
             "open_timeout": 0.1, "read_timeout": 0.1, "reconnects": 0, "ray_segment": 1.0}


def check_ranges(c: RunChoices) -> None:
    """The bounds ``edgeclass run``'s parser puts on its options, for library callers."""
    for name, low in _AT_LEAST.items():
        value = getattr(c, name)
        if value is not None and value < low:
            raise UsageError(f"{name.replace('_', '-')} must be at least {low}, got {value}")
    if c.top_k > 1000:
        raise UsageError(f"top-k must be at most 1000, got {c.top_k}")
    if c.min_score is not None and not 0.0 <= c.min_score <= 1.0:
        raise UsageError(f"min-score must be between 0 and 1, got {c.min_score}")
    if c.precision is not None and c.precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}")


def _checked(c: RunChoices, planned_at: float) -> RunPlan:
    """Every up-front check after the metrics file's, in the CLI's order, then the plan."""
    from edgeclass.engine import EngineOptions, default_cache_dir
    from edgeclass.media.decode import DecodeOptions
    from edgeclass.run.ledger import check_outputs
    from edgeclass.run.publishing import publish_settings
    from edgeclass.run.context import RunOptions

    check_ranges(c)
    output, summary_json = _path(c.output), _path(c.summary_json)
    fmt = check_outputs(output, c.format, c.resume, summary_json)  # everything the run will write
    if c.keyframes and c.every_frame:
        raise UsageError("--keyframes samples by time (--every); it cannot be combined with --every-frame")
    if c.redo_other_models and not c.resume:
        raise UsageError("--redo-other-models goes with --resume (it redoes rows already in --output)")
    if c.rescan and not c.resume:
        raise UsageError("--rescan goes with --resume (without it every folder is listed anyway)")
    sort = sort_options(_path(c.copy_into), _path(c.link_into), c.hardlink, c.move)
    publish = publish_settings(c.publish, c.publish_headers, c.publish_discovery, c.publish_max_pending)
    if c.ray is not None:
        from edgeclass.run.distributed import check_request

        check_request(c.ray, c.inputs)  # Ray installed, address well-formed, no live sources
    model_dir = resolve_model_dir(_path(c.model))
    options = RunOptions(
        inputs=c.inputs, output=output, top_k=c.top_k, resume=c.resume, max_failures=c.max_failures,
        workers=c.threads or len(os.sched_getaffinity(0)),
        decode=DecodeOptions(max_pixels=c.max_pixels, reduced_decode=c.reduced_decode),
        video=VideoOptions(every_s=c.every, every_frame=c.every_frame, max_frames=c.max_frames, duration_s=c.duration,
                           open_timeout_s=c.open_timeout, read_timeout_s=c.read_timeout, reconnects=c.reconnects,
                           rtsp_tcp=c.rtsp_tcp, keyframes=c.keyframes, frozen_after_s=c.frozen_after,
                           blank_after_s=c.blank_after, reduced=c.reduced_decode, decoder_threads=c.threads or 0),
        format=fmt, min_score=c.min_score, sort=sort, redo_other_models=c.redo_other_models, rescan=c.rescan,
        metrics_file=_path(c.metrics_file), quiet_libraries=c.quiet_libraries, publish=publish,
    )
    cache_dir = None if c.no_cache else (_path(c.cache_dir) or default_cache_dir())
    engine = EngineOptions(precision=c.precision, threads=c.threads, cache_dir=cache_dir)
    ray = RayPlace(c.ray, c.ray_segment) if c.ray is not None else None
    return RunPlan(options, model_dir, engine, ray, c.max_runtime, summary_json, planned_at)


def sort_options(copy_into: Path | None, link_into: Path | None, hardlink: bool, move: bool) -> SortOptions | None:
    """--copy-into/--link-into/--hardlink/--move -> SortOptions (or None); usage errors exit 2."""
    if copy_into and link_into:
        raise UsageError("--copy-into and --link-into: choose one")
    if move and not copy_into:
        raise UsageError("--move goes with --copy-into DIR (files are only moved when asked)")
    if hardlink and not link_into:
        raise UsageError("--hardlink goes with --link-into DIR")
    if copy_into:
        return SortOptions(copy_into, "move" if move else "copy")
    if link_into:
        return SortOptions(link_into, "hardlink" if hardlink else "symlink")
    return None


# ----------------------------------------------------------------------------- classify
def classify(plan: RunPlan, reporter: RunReporter | None = None, *, stdin: TextIO | None = None,
             stdout: TextIO | None = None) -> RunSummary:
    """Run ``plan`` to its summary: on this box, or on the Ray cluster it names. Rows go to the
    plan's output (or ``stdout``: sys.stdout when None); ``stdin`` is read for the input ``-``.
    Writes the summary JSON and the final metrics file, when asked; a failure's metrics too."""
    from edgeclass.run.context import write_summary_json

    reporter = reporter or Reporter()
    metrics_file = plan.options.metrics_file
    try:
        summary = _classify(plan, reporter, stdin, stdout)
        if plan.summary_json is not None:
            write_summary_json(plan.summary_json, summary)
        if metrics_file is not None:
            write_run_metrics(metrics_file, summary)
    except EdgeclassError as exc:
        if metrics_file is not None:
            write_failed_run(metrics_file, exc.exit_code, plan.planned_at)
        raise
    return summary


def _classify(plan: RunPlan, reporter: RunReporter, stdin: TextIO | None, stdout: TextIO | None) -> RunSummary:
    from edgeclass.engine import Classifier, accuracy_caveat
    from edgeclass.media.workers import prepare_decode_workers
    from edgeclass.run.runner import run
    from edgeclass.run.stopping import graceful_stop

    with ExitStack() as stack:
        cluster = None
        if plan.ray is not None:
            from edgeclass.run.distributed import RayRun

            cluster = stack.enter_context(RayRun(plan.ray.address, plan.model_dir, plan.engine, plan.ray.segment_s))
        classifier = cluster.model if cluster else stack.enter_context(Classifier(plan.model_dir, plan.engine))
        prepare_decode_workers(plan.engine.threads)  # --threads caps OpenCV's pool; freed memory reused
        reporter.started(RunStart(plan, classifier.metadata.model_name, classifier.model_id, classifier.precision,
                                  classifier.inference_precision, cluster.describe() if cluster else None,
                                  accuracy_caveat(classifier.metadata, classifier.precision)))
        with graceful_stop(plan.max_runtime) as stop:
            if cluster:
                return cluster.summarize(run(classifier, plan.options, stop, reporter, stdin, stdout,
                                             execute=cluster.execute))
            return run(classifier, plan.options, stop, reporter, stdin, stdout)
