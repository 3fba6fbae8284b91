"""``edgeclass train``: dataset -> trained FP32 IR -> INT8 through the gate -> held-out report.

Stages (timed): scan (dataset checks, before torch is imported), load + export (backbone into
an IR through the ``convert`` path), features + head (probe) or finetune, calibrate
(temperature on the held-out split), save, quantize (``quantize_model_dir`` with the held-out
split as labelled validation), evaluate + report (the IR ``run`` will use by default).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeclass import atomic
from edgeclass.errors import UsageError
from edgeclass.model.calibration import files_hash
from edgeclass.modelfiles.folder import ModelDir, models_root
from edgeclass.modelfiles.metadata import ModelMetadata
from edgeclass.model.train import head as heads
from edgeclass.model.train.dataset import Dataset, SplitFolders, scan
from edgeclass.model.train.evaluate_report import REPORT_HTML, evaluate, write_report
from edgeclass.model.train.features import compile_f32, decode_all, run_over
from edgeclass.model.train.html import render, thumbnail
from edgeclass.model.train.options import MODES, TrainOptions
from edgeclass.ovruntime import ov

if TYPE_CHECKING:  # NNCF is imported only when quantizing: dataset errors come fast
    from edgeclass.model.quantize import GateFailedError, QuantizeReport

@dataclass
class Trained:
    """A trained FP32 classifier IR (temperature folded in) and how it was made."""

    model: ov.Model
    dataset: Dataset  # without the images that did not decode
    skipped: list[tuple[str, str]]
    preprocess: Any
    model_name: str
    backbone_origin: str
    num_params: int
    calibration: dict[str, Any]
    threshold: float
    details: dict[str, Any]  # mode-specific provenance (head, finetune history)


@dataclass
class TrainReport:
    model_dir: ModelDir
    metadata: ModelMetadata
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    quantize: QuantizeReport | None = None
    gate_error: GateFailedError | None = None  # INT8 rejected: FP32 kept, exit code 5
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0


def _targets(ds: Dataset, split: str, paths: list[str]) -> np.ndarray:
    by_path = {s.path: s.target for s in (ds.train if split == "train" else ds.heldout)}
    return np.array([by_path[p] for p in paths], np.int64)


def calibrate(logits: np.ndarray, targets: np.ndarray) -> tuple[dict[str, Any], float]:
    """Temperature scaling on held-out logits; returns (figures, default threshold)."""
    t = heads.fit_temperature(logits, targets)
    before, after = heads.softmax(logits), heads.softmax(logits / t)
    figures = {
        "temperature": t,
        "images": int(len(targets)),
        "nll_before": heads.nll(logits, targets),
        "nll_after": heads.nll(logits / t, targets),
        "ece_before": heads.expected_calibration_error(before, targets),
        "ece_after": heads.expected_calibration_error(after, targets),
    }
    return figures, heads.default_threshold(after, targets)


def _probe(options: TrainOptions, ds: Dataset, timer: _Timer, progress) -> Trained:
    from edgeclass.model.train.graft import features_model, graft_head

    if options.backbone is not None:
        with timer("load"):
            backbone_ir, pp, name, origin, num_params = _backbone_from_folder(options.backbone, progress)
    else:
        from edgeclass.model.export import torch_to_ov
        from edgeclass.model.train.backbone import load_backbone

        with timer("load"):
            progress("load", f"loading the {options.model} backbone")
            bb = load_backbone(options.model, options.weights, options.random_init, 0,
                               options.input_size, options.crop_pct, options.interpolation)
        with timer("export"):
            progress("export", "converting the backbone to an OpenVINO IR")
            backbone_ir, pp, name, origin = torch_to_ov(bb.model, bb.preprocess), bb.preprocess, options.model, bb.origin
            num_params = sum(p.numel() for p in bb.model.parameters())
            del bb
    with timer("features"):
        compiled = compile_f32(features_model(backbone_ir))
        tr = run_over(compiled, [s.path for s in ds.train], pp, _counter(progress, "training"))
        he = run_over(compiled, [s.path for s in ds.heldout], pp, _counter(progress, "held-out"))
        del compiled
    skipped = tr.failed + he.failed
    ds = ds.without({p for p, _ in skipped})
    y_tr, y_he = _targets(ds, "train", tr.paths), _targets(ds, "heldout", he.paths)
    with timer("head"):
        progress("head", f"logistic regression on {len(y_tr)} x {tr.values.shape[1]} features")
        head = heads.fit_logistic(tr.values, y_tr, len(ds.labels), options.c)
    with timer("calibrate"):
        figures, threshold = calibrate(head.logits(he.values).astype(np.float64), y_he)
        figures["train_accuracy"] = float((head.logits(tr.values).argmax(1) == y_tr).mean())
        calibrated = head.scaled(1.0 / figures["temperature"])
        model = graft_head(backbone_ir, calibrated.weight, calibrated.bias)
    details = {"head": {"type": "logistic_regression", "C": options.c, "features": int(tr.values.shape[1]),
                        "sklearn": _sklearn_version()}}
    params = num_params + head.weight.size + head.bias.size
    return Trained(model, ds, skipped, pp, name, origin, params, figures, threshold, details)


def _finetune(options: TrainOptions, ds: Dataset, timer: _Timer, progress) -> Trained:
    from edgeclass.model.export import torch_to_ov
    from edgeclass.model.train.backbone import load_backbone
    from edgeclass.model.train.finetune import check_train_stages, finetune, fold_temperature, heldout_logits, to_input

    with timer("load"):
        progress("load", f"loading {options.model}")
        bb = load_backbone(options.model, options.weights, options.random_init, len(ds.labels),
                           options.input_size, options.crop_pct, options.interpolation, options.finetune.seed)
        check_train_stages(bb.model, options.finetune.train_stages)  # before decoding anything
    with timer("decode"):
        progress("decode", f"decoding {len(ds.train) + len(ds.heldout)} images")
        tr_paths, tr_x, tr_bad = decode_all([s.path for s in ds.train], bb.preprocess)
        he_paths, he_x, he_bad = decode_all([s.path for s in ds.heldout], bb.preprocess)
    skipped = tr_bad + he_bad
    ds = ds.without({p for p, _ in skipped})
    y_tr, y_he = _targets(ds, "train", tr_paths), _targets(ds, "heldout", he_paths)
    with timer("finetune"):
        result = finetune(bb.model, np.stack(tr_x), y_tr, np.stack(he_x), y_he, bb.preprocess, options.finetune,
                          progress=lambda m: progress("finetune", m))
    with timer("calibrate"):
        logits = heldout_logits(bb.model, to_input(np.stack(he_x), bb.preprocess)).numpy().astype(np.float64)
        figures, threshold = calibrate(logits, y_he)
        fold_temperature(bb.model, figures["temperature"])
    with timer("export"):
        progress("export", "converting to an OpenVINO IR")
        model = torch_to_ov(bb.model, bb.preprocess)
    details = {"finetune": {"options": vars(options.finetune), "best_epoch": result.best_epoch,
                            "epochs_run": result.epochs_run, "threads": result.threads,
                            "trainable_params": result.trainable_params, "history": result.history}}
    params = sum(p.numel() for p in bb.model.parameters())
    return Trained(model, ds, skipped, bb.preprocess, options.model, bb.origin, params, figures, threshold, details)


def _backbone_from_folder(folder: Path, progress):
    """The FP32 IR of an edgeclass model folder (``convert`` or ``train``), its head to be cut:
    (IR, preprocessing, model name, origin, parameter count). Torch-free."""
    from edgeclass.modelfiles.ir import read_ir
    from edgeclass.modelfiles.folder import resolve_model_dir
    from edgeclass.modelfiles.metadata import read_metadata

    md = resolve_model_dir(folder)
    progress("load", f"reading the backbone IR {md.fp32_xml}")
    ir = read_ir(ov.Core(), md.xml_for("fp32"))
    meta = read_metadata(ir)
    origin = f"{meta.weights_origin}; backbone IR {md.fp32_xml.resolve()}"
    return ir, meta.preprocess, meta.model_name, origin, meta.num_params or 0


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _counter(progress, split: str):
    return lambda done, total: progress("features", f"{split} features: {done}/{total} images")


def _metadata(options: TrainOptions, trained: Trained) -> ModelMetadata:
    from edgeclass.modelfiles.ir import versions

    ds = trained.dataset
    provenance = {
        "mode": options.mode,
        "dataset": str(ds.root.resolve()),
        "heldout_source": ds.heldout_source,
        "files_sha256": files_hash([s.path for s in ds.train + ds.heldout]),
        "images": {"train": len(ds.train), "heldout": len(ds.heldout), "skipped": len(trained.skipped)},
        "temperature": trained.calibration["temperature"],
        "backbone_origin": trained.backbone_origin,
    } | trained.details
    return ModelMetadata(
        labels=ds.labels,
        preprocess=trained.preprocess,
        model_name=trained.model_name,
        weights_origin=f"{trained.backbone_origin} + edgeclass train ({options.mode}) on {ds.root.resolve()}",
        precision="fp32",
        num_params=int(trained.num_params),
        versions=versions() | {"scikit-learn": _sklearn_version()},
        confidence_threshold=trained.threshold,
        extra={"train": provenance},
    )


def _save(out: ModelDir, model: ov.Model, meta: ModelMetadata) -> None:
    from edgeclass.modelfiles.ir import save_ir
    from edgeclass.model.train.evaluate_report import REPORT_JSON

    save_ir(model, meta, out.fp32_xml)
    # files left from an earlier model in this folder no longer describe it
    for stale in (out.int8_xml, out.int8_rejected_xml):
        out.remove_ir(stale)
    for stale in (out.path / REPORT_JSON, out.path / REPORT_HTML):
        stale.unlink(missing_ok=True)


def _quantize(options: TrainOptions, out: ModelDir, ds: Dataset, report: TrainReport, progress) -> QuantizeReport:
    from edgeclass.model.quantize import GateFailedError, QuantizeOptions, quantize_model_dir

    with SplitFolders(ds) as split:
        qopts = QuantizeOptions(max_drop=options.max_drop, validation=split.heldout,
                                accuracy_control=options.accuracy_control, refusal_hint=(
            "FP32 tells the held-out images apart and INT8 does not: keep using FP32, or add training images "
            "that vary like the held-out ones, they also calibrate INT8"))
        try:
            report.quantize = quantize_model_dir(out, split.train, qopts, progress=lambda m: progress("quantize", m))
        except GateFailedError as exc:
            report.quantize, report.gate_error = exc.report, exc
    report.files += [report.quantize.xml, report.quantize.xml.with_suffix(".bin")]
    return report.quantize


def _evaluate(out: ModelDir, trained: Trained) -> tuple[str, dict[str, Any]]:
    """Held-out figures of the IR ``run`` uses by default (INT8 when it passed the gate),
    compiled as ``run`` compiles it."""
    from edgeclass.engine import Classifier, EngineOptions

    precision = out.default_precision()
    with Classifier(out, EngineOptions(precision=precision)) as classifier:
        outs = run_over(classifier.compiled, [s.path for s in trained.dataset.heldout], trained.preprocess)
    targets = _targets(trained.dataset, "heldout", outs.paths)
    return precision, evaluate(outs.values, targets, outs.paths, trained.dataset.labels, trained.threshold)


def _report(options: TrainOptions, trained: Trained, precision: str, heldout: dict, report: TrainReport) -> dict:
    ds = trained.dataset
    int8 = None
    if report.quantize is not None:
        from edgeclass.modelfiles.ir import read_ir
        from edgeclass.modelfiles.metadata import read_metadata

        int8_meta = read_metadata(read_ir(ov.Core(), report.quantize.xml))
        int8 = {"kept": report.gate_error is None, "xml": report.quantize.xml.name, "gate": int8_meta.accuracy,
                "method": (int8_meta.calibration or {}).get("method")}
    return {
        "model_name": trained.model_name,
        "mode": options.mode,
        "dataset": str(ds.root),
        "labels": list(ds.labels),
        "backbone_origin": trained.backbone_origin,
        "heldout_source": ds.heldout_source,
        "counts": {"train": ds.counts("train"), "heldout": ds.counts("heldout")},
        "skipped": [{"path": p, "reason": r} for p, r in trained.skipped],
        "calibration": trained.calibration,
        "evaluated_precision": precision,
        "heldout": heldout,
        "int8": int8,
        "warnings": report.warnings,
        "seconds": {k: round(v, 2) for k, v in report.seconds.items()},
    } | {k: v for k, v in trained.details.items() if k == "finetune"}


def _write_reports(out: ModelDir, trained: Trained, report: TrainReport) -> None:
    write_report(out.path, report.report)
    paths = {e["path"] for pair in report.report["heldout"]["most_confused"] for e in pair["examples"]}
    thumbs = {p: thumbnail(p, trained.preprocess) for p in sorted(paths)}
    atomic.write_text(out.path / REPORT_HTML, render(report.report, thumbs))
    report.files += [out.path / "report.json", out.path / REPORT_HTML]


def train(options: TrainOptions, progress: Callable[[str, str], None] = lambda stage, message: None) -> TrainReport:
    if options.mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    if options.backbone is not None and (options.mode != "probe" or options.weights or options.random_init):
        raise UsageError("--backbone (a model folder) is for --mode probe, without --weights or --random-init")
    if options.finetune.train_stages is not None and options.mode != "finetune":
        raise UsageError("--train-stages is for --mode finetune (the probe trains only a head)")
    timer = _Timer()
    with timer("scan"):
        ds = scan(options.dataset)
    progress("scan", f"{len(ds.labels)} classes, {len(ds.train)} training and {len(ds.heldout)} held-out images")
    trained = (_probe if options.mode == "probe" else _finetune)(options, ds, timer, progress)
    out = ModelDir(options.output or models_root() / Path(options.dataset).resolve().name)
    meta = _metadata(options, trained)
    with timer("save"):
        progress("save", f"saving the FP32 IR to {out.fp32_xml}")
        _save(out, trained.model, meta)
    report = TrainReport(out, meta, {}, list(ds.warnings), files=[out.fp32_xml, out.fp32_xml.with_suffix(".bin")])
    report.warnings += [f"skipped {p}: {r}" for p, r in trained.skipped]
    if options.int8:
        with timer("quantize"):
            quantized = _quantize(options, out, trained.dataset, report, progress)
        report.warnings += quantized.warnings
    with timer("evaluate"):
        progress("evaluate", f"evaluating on {len(trained.dataset.heldout)} held-out images")
        precision, heldout = _evaluate(out, trained)
    report.seconds = timer.seconds
    report.report = _report(options, trained, precision, heldout, report)
    with timer("report"):
        _write_reports(out, trained, report)
    report.seconds = timer.seconds
    return report
