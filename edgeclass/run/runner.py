"""``edgeclass run`` as a library call: inputs -> pipeline -> the results ledger (edgeclass.run.ledger: output, resume journal, lock) -> summary."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Protocol, TextIO

from edgeclass import __version__
from edgeclass import atomic
from edgeclass.media.decode import DecodeOptions, ImageReadError, check_readable, load_image_tensor
from edgeclass.engine import Classifier
from edgeclass.errors import EXIT_INPUT_FAILURES, EXIT_OK, OutputError
from edgeclass.media.inputs import Source, expand_inputs, prefetch, unique_sources
from edgeclass.run.metrics import Ticker
from edgeclass.run.pipeline import Done, Pipeline, WorkItem
from edgeclass.results import UNKNOWN_LABEL, Result, RunCounts
from edgeclass.run.journal import file_key
from edgeclass.run.resume import ResumeState
from edgeclass.run.ledger import open_ledger
from edgeclass.run.sorting import SortOptions, finish_cut_move, sorters
from edgeclass.run.stopping import StopState


@dataclass(frozen=True)
class RunOptions:
    inputs: tuple[str, ...]
    output: Path | None = None  # None: CSV on stdout
    top_k: int = 5
    resume: bool = False
    max_failures: int = 0  # failed inputs tolerated before the exit code says so
    workers: int = 2  # decode/preprocess threads
    decode: DecodeOptions = DecodeOptions()
    video: object | None = None  # edgeclass.media.video.VideoOptions, when video support is used
    format: str | None = None  # csv, jsonl, parquet; None: from the output's extension
    min_score: float | None = None  # top-1 below this: label "unknown" (None: the IR's confidence_threshold)
    sort: SortOptions | None = None  # --copy-into/--link-into: image files sorted into DIR/<label>/
    redo_other_models: bool = False  # --resume: classify again inputs whose rows came from another model
    metrics_file: Path | None = None  # --metrics-file: rewritten every 15 s while the run goes on
    quiet_libraries: bool = False  # the decoding libraries' own stderr lines off (the CLI: unless --verbose), Ray actors too


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
    per_source: dict[str, dict] = field(default_factory=dict)  # videos/streams: winning label
    note: str | None = None  # e.g. where the rows of an unfinished run are (said even with -q)
    health: dict[str, dict] = field(default_factory=dict)  # live sources: frames read, dropped, reconnects...
    model_id: str = ""  # the `model` column of this run's rows (ModelDir.model_id)

    @property
    def images_per_s(self) -> float:
        return self.counts.total / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict:
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
            "edgeclass_version": __version__,
        }


class Reporter(Protocol):
    def result(self, result: Result) -> None: ...

    def event(self, message: str) -> None: ...


class _Silent:
    def result(self, result: Result) -> None:
        pass

    def event(self, message: str) -> None:
        pass


def work_items(
    sources: Iterator[Source | None],
    classifier: Classifier,
    options: RunOptions,
    resume: ResumeState | None,
    counts: RunCounts,
    completed: set[str],
    stop: StopState,
    reporter: Reporter,
) -> Iterator[WorkItem | None]:
    """Images and video files in input order; live sources read concurrently and interleaved."""
    pp = classifier.metadata.preprocess
    hub = None
    for source in sources:
        if stop.event.is_set():
            return
        if hub is not None:
            yield from hub.ready()
        if source is None:  # inputs are slow to come (stdin): let the pipeline catch up
            yield None
            continue
        if source.kind in ("stream", "camera"):
            from edgeclass.media.video import LiveHub, VideoOptions

            if hub is None:
                hub = LiveHub(pp, options.video or VideoOptions(), stop.event, reporter.event)
                counts.live_health = hub.health  # per-source health for the summary
                counts.live_close = hub.close
            hub.add(source)
            continue
        if skip_done(source, resume, counts, options.sort):
            continue
        if source.kind == "image":
            key = file_key(source.path) if resume is not None else None  # the journal's key (a stat)
            completed.add(source.path)
            yield WorkItem(source.path, partial(load_image_tensor, source.path, pp, options.decode), tag=key)
        else:
            from edgeclass.media.video import VideoOptions, file_items  # OpenCV video I/O only when needed

            key = file_key(source.path)
            try:
                check_readable(source.path)  # missing/unreadable say so (OpenCV cannot tell why)
            except ImageReadError as exc:
                completed.add(source.path)
                yield WorkItem(source.path, partial(_raise, exc), tag=key)
                continue
            for item in file_items(source, pp, options.video or VideoOptions(), stop.event, completed):
                yield WorkItem(item.source, item.load, item.frame, item.timestamp_ms, key)
                if hub is not None:
                    yield from hub.ready()
    if hub is not None:
        yield from hub.drain()


def _raise(exc: Exception):
    raise exc


def live_closing_rows(counts: RunCounts) -> Iterator[Done]:
    """After the pipeline: the rows of live sources down when the run ends (a stopped pipeline
    takes no more items, so they are written here)."""
    for result in counts.live_close() if counts.live_close else ():
        yield Done(WorkItem(result.source, partial(_raise, ImageReadError(result.status, result.error)),
                            result.frame, result.timestamp_ms), result)


def live_failing(health: dict[str, dict]) -> bool:
    """A live source was down, frozen or blank when the run ended."""
    if not health:
        return False
    from edgeclass.media.video.health import failing_sources

    return bool(failing_sources(health))


def skip_done(source: Source, resume: ResumeState | None, counts: RunCounts, sort: SortOptions | None = None) -> bool:
    """True (and counted) when ``--resume`` finds ``source`` already in the output. Under
    ``--move`` an image with an ok row that is still in its folder is a move a kill cut after
    the row was written: finished when its place holds it, else classified again (the old row
    is superseded), so that it is sorted."""
    if resume is None or not resume.is_done(source.path):
        return False
    cut_move = (sort is not None and sort.mode == "move" and source.kind == "image"
                and resume.status(source.path) == "ok")
    if cut_move and not finish_cut_move(sort, Path(os.path.abspath(source.path))):
        return False
    counts.skipped_resume += 1
    counts.kept_other_models += resume.other_model(source.path)  # a subset of the skipped
    return True


def local_results(sources, classifier, options, resume, counts, completed, stop, reporter) -> Iterator[Done]:
    """Classify on this box: decode threads + OpenVINO async requests (``run``'s default executor;
    ``edgeclass.run.distributed`` is the other one, with the same arguments)."""
    items = work_items(sources, classifier, options, resume, counts, completed, stop, reporter)
    return Pipeline(classifier, options.top_k, workers=options.workers).run(items, stop.event)


# ----------------------------------------------------------------------------- --min-score (abstain)
def effective_min_score(options: RunOptions, classifier: Classifier) -> float | None:
    """``--min-score``, else the threshold `edgeclass train` stored in the IR, else None (off)."""
    return options.min_score if options.min_score is not None else classifier.metadata.confidence_threshold


def abstain(result: Result, min_score: float | None) -> Result:
    """A prediction whose top-1 score is below ``min_score`` gets the label "unknown"; the
    status stays ok and the class id and scores are kept, so users can filter on them."""
    if not min_score or not result.ok or not result.predictions or result.predictions[0].score >= min_score:
        return result
    top = result.predictions[0]
    return replace(result, predictions=(replace(top, label=UNKNOWN_LABEL),) + result.predictions[1:])


def abstaining(dones: Iterator[Done], min_score: float | None) -> Iterator[Done]:
    """``dones`` with :func:`abstain` applied (``dones`` itself when there is no threshold)."""
    if not min_score:
        return dones
    return (Done(done.item, abstain(done.result, min_score)) for done in dones)


def _per_source(results: dict[str, dict[str, int]]) -> dict[str, dict]:
    out = {}
    for source, labels in results.items():
        frames = sum(labels.values())
        label, n = max(labels.items(), key=lambda kv: (kv[1], kv[0]))
        out[source] = {"frames": frames, "top_label": label, "share": round(n / frames, 4)}
    return out


def run(
    classifier: Classifier,
    options: RunOptions,
    stop: StopState,
    reporter: Reporter | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    execute=local_results,
) -> RunSummary:
    reporter = reporter or _Silent()
    counts = RunCounts()
    started = time.perf_counter()
    votes: dict[str, dict[str, int]] = {}
    output = options.output
    fmt = output_format(options)
    note = None
    sort_before_row, sort_after_row = sorters(options.sort, reporter.event)  # checks its folder first
    ledger = open_ledger(output, fmt, options.top_k, options.resume, stdout or sys.stdout, reporter.event,
                         classifier.model_id, options.redo_other_models)
    completed: set[str] = set()
    ticker = Ticker(options.metrics_file, counts, classifier, reporter.event)  # the final write: the caller's
    try:
        sources = prefetch(unique_sources(expand_inputs(options.inputs, stdin)), stop.event)
        dones = execute(sources, classifier, options, ledger.state, counts, completed, stop, reporter)
        dones = abstaining(dones, effective_min_score(options, classifier))
        dones = chain(dones, live_closing_rows(counts))  # live sources down at the end
        for done in dones:
            sort_before_row(done.result)
            try:
                ledger.append(done.result, done.item.tag, completed)
            except BrokenPipeError:
                stop.stop("broken pipe", EXIT_OK)
                break
            counts.add(done.result)
            sort_after_row(done.result)
            if done.result.frame is not None and done.result.ok and done.result.predictions:
                per_source = votes.setdefault(done.result.source, {})
                label = done.result.predictions[0].label
                per_source[label] = per_source.get(label, 0) + 1
            reporter.result(done.result)
        note = ledger.commit(completed, clean=stop.reason is None)
    except BaseException:
        ledger.abort()
        raise
    finally:
        ticker.stop()
        ledger.close()

    summary = RunSummary(
        counts=counts,
        duration_s=time.perf_counter() - started,
        model=classifier.metadata.model_name,
        model_id=classifier.model_id,
        model_dir=str(classifier.model_dir.path),
        precision=classifier.precision,
        inference_precision=classifier.inference_precision,
        output=str(output) if output else None,
        stopped_by=stop.reason,
        per_source=_per_source(votes),
        health=counts.live_health() if counts.live_health else {},
        note=note,
    )
    failing = live_failing(summary.health) and counts.failed > options.max_failures  # however it was stopped
    if stop.exit_code is not None and stop.reason != "broken pipe" and not failing:
        summary.exit_code = stop.exit_code
    elif counts.failed > options.max_failures:
        summary.exit_code = EXIT_INPUT_FAILURES
    return summary


def output_format(options: RunOptions) -> str:
    from edgeclass.run.output import format_for

    return format_for(options.output, options.format)


def write_summary_json(path: Path, summary: RunSummary) -> None:
    try:
        atomic.write_text(path, json.dumps(summary.to_dict(), indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write --summary-json {path}: {exc.strerror or exc}") from exc
