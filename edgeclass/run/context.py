"""What one run is made of, as its executors see it: the options :func:`edgeclass.run.plan.plan_run`
checked (:class:`RunOptions`), the model (:class:`RunModel`), the run's state (:class:`RunContext`,
its live sources' hub), the executor's and the reporter's shape, and what a run returns
(:class:`RunSummary`, and its JSON file). :mod:`edgeclass.run.runner` runs it, this box's pipeline
or Ray's (:mod:`edgeclass.run.distributed`) classifies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

from edgeclass import __version__
from edgeclass import atomic
from edgeclass.errors import EXIT_OK, OutputError
from edgeclass.media.decode import DecodeOptions, ImageReadError
from edgeclass.media.inputs import Source
from edgeclass.media.video.options import VideoOptions
from edgeclass.results import Result, RunCounts
from edgeclass.run.output import Format, format_for
from edgeclass.run.pipeline import Done, WorkItem
from edgeclass.run.resume import ResumeState
from edgeclass.run.sorting import SortOptions
from edgeclass.run.stopping import StopState

if TYPE_CHECKING:
    from edgeclass.media.video.live import LiveHub
    from edgeclass.modelfiles.folder import ModelDir
    from edgeclass.modelfiles.metadata import ModelMetadata
    from edgeclass.publish.hub import PublishSettings


@dataclass(frozen=True)
class RunOptions:
    inputs: tuple[str, ...]
    output: Path | None = None  # None: CSV on stdout
    top_k: int = 5
    resume: bool = False
    max_failures: int = 0  # failed inputs tolerated before the exit code says so
    workers: int = 2  # decode/preprocess threads
    decode: DecodeOptions = DecodeOptions()
    video: VideoOptions = VideoOptions()  # video files and live sources
    format: Format | str | None = None  # a Format (or its name); None: from the output's extension. A Format once made
    min_score: float | None = None  # top-1 below this: label "unknown" (None: the IR's confidence_threshold)
    sort: SortOptions | None = None  # --copy-into/--link-into: image files sorted into DIR/<label>/
    redo_other_models: bool = False  # --resume: classify again inputs whose rows came from another model
    rescan: bool = False  # --resume: list every folder (none is taken as unchanged: run/folders.py)
    metrics_file: Path | None = None  # --metrics-file: rewritten every 15 s while the run goes on
    quiet_libraries: bool = False  # the decoding libraries' own stderr lines off (the CLI: unless --verbose), Ray actors too
    publish: PublishSettings | None = None  # --publish: rows to MQTT / webhooks (edgeclass.run.publishing)

    def __post_init__(self) -> None:
        object.__setattr__(self, "format", format_for(self.output, self.format))  # resolved once, here

    @property
    def output_format(self) -> Format:
        """:attr:`format`, which ``__post_init__`` made a Format."""
        return cast(Format, self.format)


@dataclass
class RunSummary:
    counts: RunCounts
    duration_s: float
    model: str
    model_dir: str
    precision: str
    inference_precision: str
    output: str | None
    stopped_by: str | None = None
    exit_code: int = EXIT_OK
    per_source: dict[str, dict[str, Any]] = field(default_factory=dict)  # videos/streams: winning label
    note: str | None = None  # e.g. where the rows of an unfinished run are (said even with -q)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)  # live sources: frames read, dropped, reconnects...
    model_id: str = ""  # the `model` column of this run's rows (ModelDir.model_id)
    publish: list[dict[str, Any]] = field(default_factory=list)  # --publish: per target, pending, delivered... (TargetReport)
    folders_listed: int = 0  # --resume: folders listed
    folders_not_listed: int = 0  # --resume: folders unchanged since a run that settled them (not listed)

    @property
    def images_per_s(self) -> float:
        return self.counts.total / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.by_status.items())),
            "total": self.counts.total,
            "ok": self.counts.ok,
            "failed": self.counts.failed,
            "skipped_resume": self.counts.skipped_resume,
            "kept_other_models": self.counts.kept_other_models,
            "duration_s": round(self.duration_s, 3),
            "images_per_s": round(self.images_per_s, 2),
            "model": self.model,
            "model_id": self.model_id,
            "model_dir": self.model_dir,
            "precision": self.precision,
            "inference_precision": self.inference_precision,
            "output": self.output,
            "stopped_by": self.stopped_by,
            "exit_code": self.exit_code,
            "per_source": self.per_source,
            "health": self.health,
            "publish": self.publish,
            "folders_listed": self.folders_listed,
            "folders_not_listed": self.folders_not_listed,
            "edgeclass_version": __version__,
        }


class Reporter(Protocol):
    def result(self, result: Result) -> None: ...

    def event(self, message: str) -> None: ...


class Silent:
    """A :class:`Reporter` that says nothing."""

    def result(self, result: Result) -> None:
        pass

    def event(self, message: str) -> None:
        pass


class LiveSources:
    """The live sources (streams, cameras) of a run: their hub, made when the first one comes,
    read concurrently and interleaved with the other inputs."""

    def __init__(self) -> None:
        self.hub: LiveHub | None = None

    def add(self, source: Source, ctx: RunContext) -> None:
        if self.hub is None:
            from edgeclass.media.video import LiveHub

            self.hub = LiveHub(ctx.classifier.metadata.preprocess, ctx.options.video, ctx.stop.event,
                               ctx.reporter.event)
        self.hub.add(source)

    def ready(self) -> Iterator[WorkItem]:
        return self.hub.ready() if self.hub is not None else iter(())

    def drain(self) -> Iterator[WorkItem | None]:
        return self.hub.drain() if self.hub is not None else iter(())

    def health(self) -> dict[str, dict[str, Any]]:
        """Per-source health, for the summary and the metrics file ({} without live sources)."""
        return self.hub.health() if self.hub is not None else {}

    def closing_rows(self) -> Iterator[Done]:
        """After the pipeline: the rows of live sources down when the run ends (a stopped
        pipeline takes no more items, so they are written here)."""
        for result in self.hub.close() if self.hub is not None else ():
            yield Done(WorkItem(result.source, partial(raise_, ImageReadError(result.status, result.error)),
                                result.frame, result.timestamp_ms), result)


class RunModel(Protocol):
    """What :func:`edgeclass.run.runner.run` reads from its model: a
    :class:`~edgeclass.engine.Classifier`, or on Ray the driver's
    :class:`~edgeclass.run.distributed.ClusterModel` (nothing compiled there)."""

    metadata: ModelMetadata
    model_dir: ModelDir
    model_id: str  # the `model` column of every row
    precision: str

    @property
    def inference_precision(self) -> str: ...


@dataclass
class RunContext:
    """One run as its executor sees it (:func:`edgeclass.run.runner.local_results`, or
    :meth:`edgeclass.run.distributed.RayRun.execute`)."""

    classifier: RunModel  # a Classifier; on Ray a ClusterModel
    options: RunOptions
    resume: ResumeState | None  # with --resume: what the output already holds
    counts: RunCounts
    stop: StopState
    reporter: Reporter
    completed: set[str] = field(default_factory=set)  # inputs read to their end (their rows may commit)
    live: LiveSources = field(default_factory=LiveSources)


class Executor(Protocol):
    def __call__(self, sources: Iterator[Source | None], ctx: RunContext) -> Iterator[Done]: ...


def raise_(exc: Exception) -> NoReturn:
    """A work item's load for an input known to fail: its error becomes the row's status."""
    raise exc


def write_summary_json(path: Path, summary: RunSummary) -> None:
    try:
        atomic.write_text(path, json.dumps(summary.to_dict(), indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write --summary-json {path}: {exc.strerror or exc}") from exc
