"""``edgeclass convert``: timm MobileViTv2 -> FP32 IR -> (optionally) INT8 IR.

Imports torch (through :mod:`edgeclass.model.timm_loader`): only the ``convert`` command loads it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeclass.model.calibration import ADD_IMAGES_HINT, list_images
from edgeclass.model.export import torch_to_ov
from edgeclass.modelfiles.ir import save_ir, versions
from edgeclass.modelfiles.folder import ModelDir, models_root
from edgeclass.modelfiles.metadata import ModelMetadata
from edgeclass.model.quantize import QuantizeOptions, QuantizeReport, quantize_model_dir
from edgeclass.model.timm_loader import DEFAULT_MODEL, load_model


@dataclass(frozen=True)
class ConvertOptions:
    model: str = DEFAULT_MODEL
    weights: Path | None = None
    labels: Path | None = None
    output: Path | None = None  # default: models/<model>/
    input_size: int | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    int8: bool = True
    calibration: Path = Path("calibration")
    quantize: QuantizeOptions = QuantizeOptions()


@dataclass
class ConvertReport:
    model_dir: ModelDir
    metadata: ModelMetadata
    files: list[Path] = field(default_factory=list)
    quantize: QuantizeReport | None = None
    int8_skipped_reason: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def default_output(model: str) -> Path:
    return models_root() / model


def calibration_problem(folder: Path) -> str | None:
    """Why INT8 cannot be made from ``folder`` (None when it has images)."""
    if not folder.is_dir():
        return f"calibration folder {folder} does not exist"
    if not list_images(folder):
        return f"calibration folder {folder} has no images"
    return None


def convert(options: ConvertOptions, progress=lambda stage, message: None) -> ConvertReport:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    progress("load", f"loading {options.model}" + (f" weights from {options.weights}" if options.weights else " from the Hugging Face hub"))
    loaded = load_model(
        options.model,
        weights=options.weights,
        labels_file=options.labels,
        input_size=options.input_size,
        crop_pct=options.crop_pct,
        interpolation=options.interpolation,
    )
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress("convert", "converting to OpenVINO IR")
    ov_model = torch_to_ov(loaded.model, loaded.preprocess)
    timings["convert"] = time.perf_counter() - t0

    out_dir = ModelDir(options.output or default_output(options.model))
    meta = ModelMetadata(
        labels=loaded.labels,
        preprocess=loaded.preprocess,
        model_name=loaded.name,
        weights_origin=loaded.weights_origin,
        precision="fp32",
        num_params=loaded.num_params,
        versions=versions(),
    )
    t0 = time.perf_counter()
    progress("save", f"saving FP32 IR to {out_dir.fp32_xml}")
    save_ir(ov_model, meta, out_dir.fp32_xml)
    # an INT8 IR left from an earlier conversion no longer matches this FP32 model
    for stale in (out_dir.int8_xml, out_dir.int8_rejected_xml):
        out_dir.remove_ir(stale)
    timings["save"] = time.perf_counter() - t0
    report = ConvertReport(out_dir, meta, [out_dir.fp32_xml, out_dir.fp32_xml.with_suffix(".bin")], seconds=timings)

    if not options.int8:
        report.int8_skipped_reason = "--no-int8"
        return report
    problem = calibration_problem(options.calibration)
    if problem:
        report.int8_skipped_reason = f"{problem}; kept the FP32 model only. To add INT8: {ADD_IMAGES_HINT}"
        return report
    t0 = time.perf_counter()
    progress("quantize", f"quantizing with calibration images from {options.calibration}")
    try:
        report.quantize = quantize_model_dir(
            out_dir, options.calibration, options.quantize, progress=lambda m: progress("quantize", m)
        )
    finally:
        timings["quantize"] = time.perf_counter() - t0
    report.files += [report.quantize.xml, report.quantize.xml.with_suffix(".bin")]
    return report
