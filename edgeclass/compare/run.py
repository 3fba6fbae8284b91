"""``compare``'s stages in order: list the images, open both models, classify every image with
both (:mod:`.pairs`), summarise (:mod:`.stats`), write ``report.json`` and ``report.html``, and
record the verdict where ``promote`` finds it (:mod:`.verdicts`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgeclass import atomic
from edgeclass.modelfiles import verdicts
from edgeclass.compare.pairs import Failed, Item, Pair, compare_pairs, crops_loader
from edgeclass.compare.stats import Comparison, ModelSide, summarise
from edgeclass.errors import OutputError, UsageError
from edgeclass.media.decode import DecodeOptions
from edgeclass.modelfiles.folder import ModelDir, resolve_model_dir

if TYPE_CHECKING:
    from edgeclass.engine import Classifier
    from edgeclass.modelfiles.preprocessing import PreprocessConfig


@dataclass(frozen=True)
class CompareOptions:
    inputs: tuple[str, ...] = ()  # unlabelled images (files, folders, - for stdin)
    validation: Path | None = None  # labelled: sub-folders named by label
    max_drop: float = 0.01  # a fraction: 0.01 = 1 point
    precision: str | None = None  # None: each model's default (int8 when present), as run
    threads: int | None = None
    decode: DecodeOptions = DecodeOptions()
    cache_dir: Path | None = None
    report: Path | None = None  # folder for report.json and report.html


@dataclass
class CompareOutcome:
    comparison: Comparison
    report_json: Path | None = None
    report_html: Path | None = None
    recorded: Path | None = None  # the verdict record promote reads
    warnings: list[str] = field(default_factory=list)


def _labelled(validation: Path) -> list[tuple[str, str | None]]:
    from edgeclass.media.inputs import walk_sorted

    if not validation.is_dir():
        raise UsageError(f"--validation {validation} is not a folder (sub-folders named by label)")
    out = []
    for path in walk_sorted(str(validation), include_videos=False):
        parts = Path(path).relative_to(validation).parts
        out.append((path, parts[0] if len(parts) >= 2 else None))
    return out


def list_images(options: CompareOptions) -> list[tuple[str, str | None]]:
    """(path, label folder name or None) for every image, in order, each once. Checked before
    any model is opened: videos and streams are refused (compare takes images)."""
    from edgeclass.media.inputs import expand_inputs, unique_sources

    images: dict[str, str | None] = {}
    for source in unique_sources(expand_inputs(options.inputs, include_videos=False)):
        if source.kind != "image":
            raise UsageError(f"{source.path}: compare takes images ({source.kind}s are not compared)")
        images.setdefault(source.path, None)
    if options.validation is not None:
        for path, truth in _labelled(options.validation):
            images[path] = truth
    if not images:
        raise UsageError("no images to compare: give INPUTS or --validation DIR")
    return list(images.items())


def _items(images: list[tuple[str, str | None]], root: Path | None,
           labels: tuple[tuple[str, ...], tuple[str, ...]]) -> tuple[list[Item], list[str]]:
    """Items with each model's class id for the folder name (its ``target_for`` convention)."""
    from edgeclass.model.calibration import target_for

    items: list[Item] = []
    unknown: set[str] = set()
    old_labels, new_labels = labels
    for path, truth in images:
        if truth is None or root is None:  # a truth comes from --validation, the root
            items.append(Item(path))
            continue
        targets = (target_for(path, root, old_labels), target_for(path, root, new_labels))
        if all(t is None for t in targets):
            unknown.add(truth)
        items.append(Item(path, truth, targets))
    return items, sorted(unknown)


def _side(classifier: Classifier) -> ModelSide:
    meta = classifier.metadata
    return ModelSide(classifier.model_id, str(classifier.model_dir.path), meta.model_name, classifier.precision,
                     tuple(meta.labels), meta.preprocess.to_dict())


def check_report_dir(report: Path | None) -> None:
    """The report folder is made (and checked writable) before any work."""
    if report is None:
        return
    try:
        report.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create --report {report}: {exc.strerror or exc}") from exc
    if not os.access(report, os.W_OK):
        raise OutputError(f"--report {report} is not writable")


def compare(old_path: Path, new_path: Path, options: CompareOptions,
            progress: Callable[[int, int], None] = lambda done, total: None) -> CompareOutcome:
    from edgeclass.ovruntime import ov

    from edgeclass.engine import Classifier, EngineOptions
    from edgeclass.media.workers import prepare_decode_workers

    check_report_dir(options.report)
    old_dir, new_dir = resolve_model_dir(old_path), resolve_model_dir(new_path)
    images = list_images(options)
    engine = EngineOptions(precision=options.precision, threads=options.threads, cache_dir=options.cache_dir)
    core = ov.Core()
    with Classifier(old_dir, engine, core) as old, Classifier(new_dir, engine, core) as new:
        prepare_decode_workers(options.threads)
        items, unknown = _items(images, options.validation, (old.labels, new.labels))
        configs = (old.metadata.preprocess, new.metadata.preprocess)
        workers = options.threads or len(os.sched_getaffinity(0))
        pairs: list[Pair] = []
        failed: list[Failed] = []
        for n, done in enumerate(compare_pairs(old, new, items, crops_loader(configs, options.decode), workers), 1):
            if isinstance(done, Pair):
                pairs.append(done)
            else:
                failed.append(done)
            if n % 16 == 0:
                progress(n, len(items))
        progress(len(items), len(items))
        comparison = summarise(pairs, failed, _side(old), _side(new), options.max_drop,
                               configs[0] == configs[1], unknown)
    outcome = CompareOutcome(comparison)
    if options.report is not None:
        write_report(outcome, options.report, configs[1])
    _record(outcome, new_dir, old_dir, options.report)
    return outcome


def write_report(outcome: CompareOutcome, folder: Path, new_preprocess: PreprocessConfig) -> None:
    from edgeclass.compare.html import MAX_THUMBS, render
    from edgeclass.model.train.html import thumbnail

    c = outcome.comparison
    thumbs = {f.path: thumbnail(f.path, new_preprocess) for f in c.flips[:MAX_THUMBS]}
    try:
        atomic.write_text(folder / "report.json", json.dumps(c.to_dict(), indent=2) + "\n")
        atomic.write_text(folder / "report.html", render(c, thumbs))
    except OSError as exc:
        raise OutputError(f"cannot write the report into {folder}: {exc.strerror or exc}") from exc
    outcome.report_json, outcome.report_html = folder / "report.json", folder / "report.html"


def _record(outcome: CompareOutcome, new_dir: ModelDir, old_dir: ModelDir, report: Path | None) -> None:
    c = outcome.comparison
    entry = {"old": c.old.model_id, "new": c.new.model_id, "old_dir": str(old_dir.path.resolve()),
             "new_dir": str(new_dir.path.resolve()), "verdict": c.verdict, "summary": c.summary(),
             "report": str(report.resolve()) if report is not None else None}
    try:
        outcome.recorded = verdicts.record(new_dir.path, entry)
    except OSError as exc:
        outcome.warnings.append(f"cannot record the verdict in {new_dir.path} ({exc.strerror or exc}): "
                                "`edgeclass promote` will not know this comparison")
