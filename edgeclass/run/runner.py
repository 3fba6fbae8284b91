"""``edgeclass run`` as a library call: inputs -> pipeline -> CSV, with resume, lock and summary."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol, TextIO

from edgeclass import __version__
from edgeclass.run.csvout import ENCODING, ERRORS, CsvSink, RowFile
from edgeclass.media.decode import DecodeOptions, load_image_tensor
from edgeclass.engine import Classifier
from edgeclass.errors import EXIT_INPUT_FAILURES, EXIT_OK, OutputError
from edgeclass.media.inputs import Source, expand_inputs, prefetch
from edgeclass.run.lock import OutputLock
from edgeclass.run.pipeline import Done, Pipeline, WorkItem
from edgeclass.results import Result, RunCounts
from edgeclass.run.resume import ResumeState, file_key, journal_line, journal_path, prepare_resume
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
            "duration_s": round(self.duration_s, 3),
            "images_per_s": round(self.images_per_s, 2),
            "model": self.model,
            "model_dir": self.model_dir,
            "precision": self.precision,
            "inference_precision": self.inference_precision,
            "output": self.output,
            "stopped_by": self.stopped_by,
            "exit_code": self.exit_code,
            "per_source": self.per_source,
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


class _Journal:
    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def add(self, source: str, key: tuple[int, int]) -> None:
        os.write(self._fd, journal_line(source, key).encode(ENCODING, ERRORS))

    def close(self) -> None:
        os.close(self._fd)


def _partial_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.partial")


class _StdoutSink:
    def __init__(self, stream: TextIO, top_k: int):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=ERRORS)  # non-UTF-8 file names as their original bytes
        self._sink = CsvSink(stream, top_k)

    def write(self, result: Result) -> None:
        self._sink.write(result)

    def close(self) -> None:
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
            hub.add(source)
            continue
        if resume is not None and resume.is_done(source.path):
            counts.skipped_resume += 1
            continue
        if source.kind == "image":
            key = file_key(source.path)
            completed.add(source.path)
            yield WorkItem(source.path, partial(load_image_tensor, source.path, pp, options.decode), tag=key)
        else:
            from edgeclass.media.video import VideoOptions, file_items  # OpenCV video I/O only when needed

            key = file_key(source.path)
            for item in file_items(source, pp, options.video or VideoOptions(), stop.event, completed):
                yield WorkItem(item.source, item.load, item.frame, item.timestamp_ms, key)
                if hub is not None:
                    yield from hub.ready()
    if hub is not None:
        yield from hub.drain()


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
) -> RunSummary:
    reporter = reporter or _Silent()
    counts = RunCounts()
    started = time.perf_counter()
    lock = None
    journal = None
    resume_state = None
    sink = None
    votes: dict[str, dict[str, int]] = {}
    output = options.output
    try:
        if output is None:
            sink = _StdoutSink(stdout or sys.stdout, options.top_k)
        else:
            try:
                output.parent.mkdir(parents=True, exist_ok=True)
                lock = OutputLock(output).acquire()
            except OSError as exc:
                raise OutputError(f"cannot write next to {output}: {exc.strerror or exc}") from exc
            if lock.took_over_from:
                reporter.event(f"took over the lock of a run that died (pid {lock.took_over_from})")
            try:
                if options.resume:
                    resume_state = prepare_resume(output, options.top_k)
                    if resume_state.torn or resume_state.rows_dropped:
                        reporter.event(
                            f"resume: kept {resume_state.rows_kept} rows, dropped {resume_state.rows_dropped} "
                            f"(torn, stale or unfinished) to redo"
                        )
                    sink = RowFile(output, options.top_k, append=True)
                    journal = _Journal(journal_path(output))
                else:
                    sink = RowFile(_partial_path(output), options.top_k)
            except OSError as exc:
                raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from exc

        completed: set[str] = set()
        sources = prefetch(expand_inputs(options.inputs, stdin), stop.event)
        items = work_items(sources, classifier, options, resume_state, counts, completed, stop, reporter)
        pipeline = Pipeline(classifier, options.top_k, workers=options.workers)
        current: tuple[str, tuple[int, int] | None] | None = None

        def finish_source() -> None:
            if journal is not None and current is not None and current[0] in completed and current[1]:
                try:
                    journal.add(current[0], current[1])
                except OSError as exc:
                    raise OutputError(f"cannot write the resume journal: {exc.strerror or exc}") from exc

        for done in pipeline.run(items, stop.event):
            if current is not None and current[0] != done.item.source:
                finish_source()
            try:
                sink.write(done.result)
            except BrokenPipeError:
                stop.stop("broken pipe", EXIT_OK)
                break
            except OSError as exc:
                raise OutputError(
                    f"cannot write {output or 'stdout'}: {exc.strerror or exc}; "
                    f"{counts.total} rows written before the failure are intact"
                ) from exc
            current = (done.item.source, done.item.tag)
            counts.add(done.result)
            if done.result.frame is not None and done.result.ok and done.result.predictions:
                per_source = votes.setdefault(done.result.source, {})
                label = done.result.predictions[0].label
                per_source[label] = per_source.get(label, 0) + 1
            reporter.result(done.result)
        if current is not None:
            finish_source()
    finally:
        if sink is not None:
            sink.close()
            if output is not None and not options.resume:
                # rows written so far are kept even when the run failed part-way
                os.replace(_partial_path(output), output)
        if journal is not None:
            journal.close()
        if lock is not None:
            lock.release()

    summary = RunSummary(
        counts=counts,
        duration_s=time.perf_counter() - started,
        model=classifier.metadata.model_name,
        model_dir=str(classifier.model_dir.path),
        precision=classifier.precision,
        inference_precision=classifier.inference_precision,
        output=str(output) if output else None,
        stopped_by=stop.reason,
        per_source=_per_source(votes),
    )
    if stop.exit_code is not None and stop.reason != "broken pipe":
        summary.exit_code = stop.exit_code
    elif counts.failed > options.max_failures:
        summary.exit_code = EXIT_INPUT_FAILURES
    return summary


def write_summary_json(path: Path, summary: RunSummary) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
