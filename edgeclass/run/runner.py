"""One run: inputs -> an executor (this box's pipeline, or Ray's) -> the results ledger
(:mod:`edgeclass.run.ledger`: output, resume journal, lock) -> summary. Called by
:func:`edgeclass.run.plan.classify` with the options ``plan_run`` checked; what a run is made of
(its options, context, summary) is in :mod:`edgeclass.run.context`."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from edgeclass.engine import Classifier
from edgeclass.errors import EXIT_INPUT_FAILURES, EXIT_OK
from edgeclass.media.decode import ImageReadError, check_readable, load_image_tensor
from edgeclass.media.inputs import FOLDER, Source, expand_inputs, prefetch, unique_sources
from edgeclass.results import UNKNOWN_LABEL, Result, RunCounts
from edgeclass.run.context import (
    Executor, Reporter, RunContext, RunModel, RunOptions, RunSummary, Silent, raise_,
)
from edgeclass.run.folders import UNSETTLED, Folders
from edgeclass.run.journal import file_key
from edgeclass.run.ledger import open_ledger
from edgeclass.run.metrics import Ticker
from edgeclass.run.pipeline import Done, Pipeline, WorkItem
from edgeclass.run.publishing import open_publisher, publish_outcome
from edgeclass.run.resume import ResumeState
from edgeclass.run.sorting import SortOptions, finish_cut_move, sorters
from edgeclass.run.stopping import StopState

if TYPE_CHECKING:
    from edgeclass.publish.hub import TargetReport


def work_items(sources: Iterator[Source | None], ctx: RunContext) -> Iterator[WorkItem | None]:
    """Images and video files in input order; live sources read concurrently and interleaved."""
    for source in sources:
        if ctx.stop.event.is_set():
            return
        yield from ctx.live.ready()
        if source is None:  # inputs are slow to come (stdin): let the pipeline catch up
            yield None
        elif source.kind in ("stream", "camera"):
            ctx.live.add(source, ctx)
        elif skip_done(source, ctx.resume, ctx.counts, ctx.options.sort):
            continue
        elif source.kind == "image":
            yield _image_item(source, ctx)
        else:
            yield from _video_items(source, ctx)
    yield from ctx.live.drain()


def _image_item(source: Source, ctx: RunContext) -> WorkItem:
    # the journal's key: the listing's own path and stat where it has them (no second system call;
    # a stat taken before the read can only make a later --resume redo the file, never skip a change)
    key = file_key(source.path, source.identity, source.stat) if ctx.resume is not None else None
    ctx.completed.add(source.path)
    load = partial(load_image_tensor, source.path, ctx.classifier.metadata.preprocess, ctx.options.decode)
    return WorkItem(source.path, load, tag=key)


def _video_items(source: Source, ctx: RunContext) -> Iterator[WorkItem | None]:
    from edgeclass.media.video import file_items  # OpenCV video I/O only when needed

    key = file_key(source.path, source.identity, source.stat)
    try:
        check_readable(source.path)  # missing/unreadable say so (OpenCV cannot tell why)
    except ImageReadError as exc:
        ctx.completed.add(source.path)
        yield WorkItem(source.path, partial(raise_, exc), tag=key)
        return
    pp = ctx.classifier.metadata.preprocess
    for item in file_items(source, pp, ctx.options.video, ctx.stop.event, ctx.completed):
        yield WorkItem(item.source, item.load, item.frame, item.timestamp_ms, key)
        yield from ctx.live.ready()


def live_failing(health: dict[str, dict[str, Any]]) -> bool:
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
    entry = resume.entry(source) if resume is not None else None  # one lookup: done, status, model
    folder = source.folder  # the listed folder it is in (--resume: run/folders.py)
    if entry is None or not entry.done:
        if folder is not None:
            folder.sent += 1
        return False
    cut_move = sort is not None and sort.mode == "move" and source.kind == "image" and entry.status == "ok"
    if cut_move and not finish_cut_move(sort, Path(os.path.abspath(source.path))):
        if folder is not None:
            folder.sent += 1
        return False
    if folder is not None:
        folder.other += entry.other_model
        if entry.status in UNSETTLED:  # done until its ctime changes (unreadable): not without listing
            folder.unsettled = True
    counts.skipped_resume += 1
    counts.kept_other_models += entry.other_model  # a subset of the skipped
    return True


def local_results(sources: Iterator[Source | None], ctx: RunContext) -> Iterator[Done]:
    """Classify on this box: decode threads + OpenVINO async requests (``run``'s default executor;
    ``edgeclass.run.distributed`` is the other one, with the same arguments)."""
    assert isinstance(ctx.classifier, Classifier), "local_results compiles nothing: it needs a Classifier"
    pipeline = Pipeline(ctx.classifier, ctx.options.top_k, workers=ctx.options.workers)
    return pipeline.run(work_items(sources, ctx), ctx.stop.event)


# ----------------------------------------------------------------------------- --min-score (abstain)
def effective_min_score(options: RunOptions, classifier: RunModel) -> float | None:
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


def _per_source(results: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    out = {}
    for source, labels in results.items():
        frames = sum(labels.values())
        label, n = max(labels.items(), key=lambda kv: (kv[1], kv[0]))
        out[source] = {"frames": frames, "top_label": label, "share": round(n / frames, 4)}
    return out


def run(
    classifier: RunModel,
    options: RunOptions,
    stop: StopState,
    reporter: Reporter | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    execute: Executor = local_results,
) -> RunSummary:
    """Classify ``options.inputs`` with ``classifier`` into the run's ledger (the options as
    :func:`edgeclass.run.plan.plan_run` checked them); ``execute`` does the classifying."""
    reporter = reporter or Silent()
    started = time.perf_counter()
    sort_before_row, sort_after_row = sorters(options.sort, reporter.event)  # checks its folder first
    ledger = open_ledger(options.output, options.output_format, options.top_k, options.resume,
                         stdout or sys.stdout, reporter.event, classifier.model_id, options.redo_other_models)
    ctx = RunContext(classifier, options, ledger.state, RunCounts(), stop, reporter)
    try:
        publisher = open_publisher(options.publish, options.output, options.top_k, options.inputs, classifier.model_id,
                                   classifier.metadata.model_name, reporter.event)  # its outboxes beside the output: under the ledger's lock
    except BaseException:
        ledger.close()
        raise
    ticker = Ticker(options.metrics_file, ctx.counts, classifier, reporter.event, health=ctx.live.health,
                    publish=publisher.stats if publisher else None)
    votes: dict[str, dict[str, int]] = {}
    reports: list[TargetReport] = []
    committed = False
    try:
        folders = _folder_memory(ctx)
        sources = _taking(prefetch(_listed(ctx, folders, stdin), stop.event))
        dones = abstaining(execute(sources, ctx), effective_min_score(options, classifier))
        for done in chain(dones, ctx.live.closing_rows()):  # then live sources down at the end
            sort_before_row(done.result)
            if publisher is not None:
                publisher.add(done.result)  # before the ledger: a row in the output is never left unsent
            try:
                ledger.append(done.result, done.item.tag, ctx.completed)
            except BrokenPipeError:
                stop.stop("broken pipe", EXIT_OK)
                break
            ctx.counts.add(done.result)
            if folders is not None and done.item.tag is not None:
                folders.row(done.item.tag.identity, done.result.status.value)
            sort_after_row(done.result)
            _vote(votes, done.result)
            reporter.result(done.result)
        note = ledger.commit(ctx.completed, clean=stop.reason is None)
        committed = True
    except BaseException:
        ledger.abort()
        raise
    finally:
        ticker.stop()
        if publisher is not None:
            reports = publisher.finish(stopped=stop.reason is not None or not committed)
        ledger.close()
    return publish_outcome(_with_folders(_summary(ctx, time.perf_counter() - started, votes, note), folders), reports)


def _with_folders(summary: RunSummary, folders: Folders | None) -> RunSummary:
    """``summary`` with what ``--resume`` did not list: its folders, their inputs (skipped as done)."""
    if folders is not None:
        summary.counts.skipped_resume += folders.skipped_inputs
        summary.counts.kept_other_models += folders.skipped_other
        summary.folders_listed, summary.folders_not_listed = len(folders.listed_folders), folders.unlisted
    return summary


def _folder_memory(ctx: RunContext) -> Folders | None:
    """With ``--resume``: the run's :class:`~edgeclass.run.folders.Folders` (the ledger writes its
    records at the end), made from the output's journal."""
    state = ctx.resume
    if state is None:
        return None
    state.folders = Folders(state.folder_records, state.model, state.redo_other_models, ctx.options.rescan)
    return state.folders


def _listed(ctx: RunContext, folders: Folders | None, stdin: TextIO | None) -> Iterator[Source]:
    """Each input once, in order; with ``--resume`` a listed input already done is skipped here,
    in the listing's thread (one thread lists, stats and looks up: no hand-over per input), except
    under ``--move``, whose cut moves are finished by the run."""
    sources = unique_sources(expand_inputs(ctx.options.inputs, stdin, folders=folders))
    sort = ctx.options.sort
    if ctx.resume is None or (sort is not None and sort.mode == "move"):
        return sources
    return _not_done(sources, ctx.resume, ctx.counts, ctx.stop.event.is_set)


def _not_done(sources: Iterator[Source], resume: ResumeState, counts: RunCounts,
              stopped: Callable[[], bool]) -> Iterator[Source]:
    """``sources`` without the listed inputs ``resume`` finds done (counted); ends at a stop (the
    inputs skipped here are not handed over, so the stop is looked for here)."""
    for source in sources:
        if stopped():
            return
        if source.identity is None or source.kind == FOLDER or not skip_done(source, resume, counts):
            yield source


def _taking(sources: Iterator[Source | None]) -> Iterator[Source | None]:
    """``sources`` without the ends of listed folders, each marking its folder taken (every input
    of it went to the executor) as it passes."""
    for source in sources:
        if source is not None and source.kind == FOLDER:
            if source.folder is not None:
                source.folder.taken = True
            continue
        yield source


def _vote(votes: dict[str, dict[str, int]], result: Result) -> None:
    """A sampled frame's top-1 label counts for its video or stream (``--summary``)."""
    if result.frame is not None and result.ok and result.predictions:
        per_source = votes.setdefault(result.source, {})
        label = result.predictions[0].label
        per_source[label] = per_source.get(label, 0) + 1


def _summary(ctx: RunContext, duration_s: float, votes: dict[str, dict[str, int]], note: str | None) -> RunSummary:
    classifier, options, counts, stop = ctx.classifier, ctx.options, ctx.counts, ctx.stop
    summary = RunSummary(
        counts=counts,
        duration_s=duration_s,
        model=classifier.metadata.model_name,
        model_id=classifier.model_id,
        model_dir=str(classifier.model_dir.path),
        precision=classifier.precision,
        inference_precision=classifier.inference_precision,
        output=str(options.output) if options.output else None,
        stopped_by=stop.reason,
        per_source=_per_source(votes),
        health=ctx.live.health(),
        note=note,
    )
    failing = live_failing(summary.health) and counts.failed > options.max_failures  # however it was stopped
    if stop.exit_code is not None and stop.reason != "broken pipe" and not failing:
        summary.exit_code = stop.exit_code
    elif counts.failed > options.max_failures:
        summary.exit_code = EXIT_INPUT_FAILURES
    return summary
