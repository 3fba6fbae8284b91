"""NNCF post-training INT8 quantization of an edgeclass FP32 IR, with an accuracy gate.

No torch: works on the IR alone. Calibration tensors come from the same decode/preprocess
path as ``run``; the IR's embedded u8 input means NNCF sees exactly what ``run`` feeds.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import nncf
import openvino as ov
from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

from edgeclass.model.calibration import ImageSet, files_hash, load_set, split_folder, list_images
from edgeclass.errors import AccuracyGateError, CalibrationError, ModelError
from edgeclass.model.evaluate import Agreement, compare, predict_all, top1_accuracy
from edgeclass.model.export import save_ir
from edgeclass.model.modeldir import ModelDir
from edgeclass.model.modelinfo import ModelMetadata, read_metadata

RECOMMENDED_IMAGES = 300


@dataclass(frozen=True)
class QuantizeOptions:
    subset_size: int = RECOMMENDED_IMAGES
    preset: str = "performance"  # "performance" or "mixed" (measured: benchmarks/quantization_defaults.py)
    fast_bias_correction: bool = False  # full bias correction (measured: +0.25 pt, +10% time)
    model_type: str = "transformer"  # "transformer" or "cnn"
    ignored_names: tuple[str, ...] = ()
    ignored_types: tuple[str, ...] = ()
    max_drop: float = 0.01  # 1 point
    validation: Path | None = None
    accuracy_control: bool = True  # use quantize_with_accuracy_control when validation is labelled
    max_reverts: int = 20  # accuracy control: at most this many revert iterations
    ranking_subset: int = 100  # accuracy control: images used to rank layer sensitivity

    def as_record(self) -> dict:
        return {
            "subset_size": self.subset_size,
            "preset": self.preset,
            "fast_bias_correction": self.fast_bias_correction,
            "model_type": self.model_type,
            "ignored_names": list(self.ignored_names),
            "ignored_types": list(self.ignored_types),
            "max_drop": self.max_drop,
        }


@dataclass
class QuantizeReport:
    xml: Path
    passed: bool
    agreement: Agreement | None
    calibration: dict
    warnings: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)


class GateFailedError(AccuracyGateError):
    """INT8 missed ``--max-drop``; ``report`` holds the measurements (the model was saved as rejected)."""

    def __init__(self, report: QuantizeReport, message: str):
        super().__init__(message)
        self.report = report


class _RevertedCollector(logging.Handler):
    """Collects the node names NNCF's accuracy control reports as reverted to float."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.final: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "were reverted back to the floating-point precision" in msg:
            self.final = re.findall(r"^\t(.+)$", msg, flags=re.M)


def _nncf_args(options: QuantizeOptions) -> dict:
    preset = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}
    if options.preset not in preset:
        raise CalibrationError(f"--preset must be mixed or performance, got {options.preset!r}")
    if options.model_type not in ("transformer", "cnn"):
        raise CalibrationError(f"--model-type must be transformer or cnn, got {options.model_type!r}")
    ignored = None
    if options.ignored_names or options.ignored_types:
        ignored = nncf.IgnoredScope(
            names=list(options.ignored_names), types=list(options.ignored_types), validate=False
        )
    return {
        "preset": preset[options.preset],
        "model_type": nncf.ModelType.TRANSFORMER if options.model_type == "transformer" else None,
        "fast_bias_correction": options.fast_bias_correction,
        "ignored_scope": ignored,
    }


def _dataset(images: ImageSet) -> nncf.Dataset:
    # batch 1: batch-wise statistics skew ranges for transformer-type models
    return nncf.Dataset(images.tensors, lambda t: t[None])


def quantize_model_dir(
    model_dir: ModelDir,
    calibration_dir: Path,
    options: QuantizeOptions = QuantizeOptions(),
    progress=lambda message: None,
) -> QuantizeReport:
    """Quantize ``model_fp32.xml`` into ``model_int8.xml`` (or ``model_int8.rejected.xml``)."""
    if not model_dir.fp32_xml.is_file():
        raise ModelError(f"{model_dir.fp32_xml} does not exist: run `edgeclass convert` first")
    core = ov.Core()
    fp32 = core.read_model(model_dir.fp32_xml)
    meta = read_metadata(fp32)
    pp = meta.preprocess
    warnings: list[str] = []

    split = split_folder(calibration_dir, options.subset_size, options.validation)
    progress(f"decoding {len(split.calibration)} calibration images from {calibration_dir}")
    calib = load_set(split.calibration, pp)
    for path, reason in calib.failed:
        warnings.append(f"calibration image skipped: {path}: {reason}")
    if len(calib) == 0:
        raise CalibrationError(f"none of the {split.available} images in {calibration_dir} could be decoded")
    if len(calib) < RECOMMENDED_IMAGES:
        warnings.append(
            f"calibrating on {len(calib)} images (fewer than the recommended {RECOMMENDED_IMAGES}): "
            "INT8 ranges may be less accurate; add more representative images"
        )
    if options.validation is None and split.available > options.subset_size:
        warnings.append(
            f"--subset-size {options.subset_size} uses {len(split.calibration)} of {split.available} images "
            "for calibration; the rest are held out for validation"
        )
    elif options.validation is None and split.validation:
        warnings.append(
            f"held out {len(split.validation)} of {split.available} images (every 5th) to compare INT8 with "
            f"FP32; calibrating on the other {len(split.calibration)} (or pass --validation DIR)"
        )

    if options.validation is not None:
        val_paths, val_root, val_source = list_images(options.validation), options.validation, "validation folder"
    elif split.validation:
        val_paths, val_root, val_source = split.validation, calibration_dir, "held-out calibration images"
    else:
        val_paths, val_root, val_source = [], calibration_dir, "calibration images"
    val = load_set(val_paths, pp, val_root, meta.labels) if val_paths else calib
    if not val_paths:
        warnings.append("no held-out images: INT8 is compared with FP32 on the calibration images themselves")
    for path, reason in val.failed:
        warnings.append(f"validation image skipped: {path}: {reason}")

    args = _nncf_args(options)
    collector = _RevertedCollector()
    use_ac = options.accuracy_control and val.labelled and len(val) > 0
    progress(
        "quantizing with NNCF"
        + (" (accuracy control, labelled validation)" if use_ac else "")
        + f" on {len(calib)} images"
    )
    try:
        if use_ac:
            logger = logging.getLogger("nncf")
            logger.addHandler(collector)
            try:
                int8 = nncf.quantize_with_accuracy_control(
                    fp32,
                    _dataset(calib),
                    _dataset(val),
                    validation_fn=lambda compiled, data: top1_accuracy(
                        predict_all(compiled, list(data)), val.targets
                    ),
                    max_drop=options.max_drop,
                    drop_type=nncf.DropType.ABSOLUTE,
                    subset_size=len(calib),
                    preset=args["preset"],
                    model_type=args["model_type"],
                    fast_bias_correction=args["fast_bias_correction"],
                    ignored_scope=args["ignored_scope"],
                    advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                        max_num_iterations=options.max_reverts,
                        ranking_subset_size=min(options.ranking_subset, len(val)),
                    ),
                )
            finally:
                logger.removeHandler(collector)
        else:
            int8 = nncf.quantize(fp32, _dataset(calib), subset_size=len(calib), **args)
    except nncf.ValidationError as exc:
        raise CalibrationError(f"NNCF rejected the options: {exc}") from exc

    progress(f"comparing INT8 with FP32 on {len(val)} {val_source}")
    f32_compiled = core.compile_model(fp32, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    i8_compiled = core.compile_model(int8, "CPU")
    agreement = compare(predict_all(f32_compiled, val.tensors), predict_all(i8_compiled, val.tensors), val, val_source)
    passed = agreement.drop <= options.max_drop + 1e-9

    calibration_record = {
        "images_used": len(calib),
        "images_available": split.available,
        "images_failed": len(calib.failed),
        "files_sha256": files_hash(calib.paths),
        "folder": str(calibration_dir),
        "nncf": nncf.__version__,
        "openvino": ov.get_version(),
        "options": options.as_record(),
        "accuracy_control": use_ac,
        "reverted_to_float": collector.final,
    }
    accuracy_record = agreement.to_dict() | {"max_drop": options.max_drop, "passed": passed}
    int8_meta: ModelMetadata = meta.with_updates(
        precision="int8", calibration=calibration_record, accuracy=accuracy_record
    )
    target = model_dir.int8_xml if passed else model_dir.int8_rejected_xml
    stale = model_dir.int8_rejected_xml if passed else model_dir.int8_xml
    save_ir(int8, int8_meta, target)
    for p in (stale, stale.with_suffix(".bin")):
        p.unlink(missing_ok=True)
    report = QuantizeReport(target, passed, agreement, calibration_record, warnings, collector.final)
    if not passed:
        raise GateFailedError(
            report,
            f"INT8 failed the accuracy gate: {agreement.drop_kind} {agreement.drop * 100:.2f} pt > "
            f"--max-drop {options.max_drop * 100:.2f} pt on {agreement.images} {val_source}; "
            f"saved as {target.name} and not used by default (try --no-fast-bias-correction, more calibration "
            "images, or a labelled --validation folder for accuracy-controlled quantization)",
        )
    return report
