"""NNCF post-training INT8 quantization of an edgeclass FP32 IR, checked by the INT8 gate.

No torch: works on the IR alone. Calibration tensors come from the same decode/preprocess
path as ``run``; the IR's embedded u8 input means NNCF sees exactly what ``run`` feeds.

The flow: calibrate on up to ``subset_size`` images (all of a smaller folder), quantize, check
INT8 against FP32 (:mod:`edgeclass.model.gate`), and with a labelled ``--validation`` folder
run NNCF's accuracy control only when plain INT8 misses ``--max-drop``, keeping whichever of the
two loses less. A refused INT8 is saved as ``model_int8.rejected.xml``; the last good
``model_int8.xml`` stays until a new one passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import nncf
import numpy as np
from nncf.quantization.advanced_parameters import (
    AdvancedAccuracyRestorerParameters,
    AdvancedQuantizationParameters,
    AdvancedSmoothQuantParameters,
    OverflowFix,
)

from edgeclass import cpuclass
from edgeclass.engine import EngineOptions, compile_for_cpu
from edgeclass.errors import AccuracyGateError, CalibrationError, ModelError
from edgeclass.model import gate
from edgeclass.model.calibration import ImageSet, files_hash, list_images, load_set, split_folder
from edgeclass.model.evaluate import predict_views
from edgeclass.model.export import quiet_torch_cuda_notice
from edgeclass.modelfiles.ir import read_ir, save_ir
from edgeclass.modelfiles.folder import ModelDir
from edgeclass.modelfiles.metadata import ModelMetadata, read_metadata
from edgeclass.modelfiles.provenance import TARGET_CPUS
from edgeclass.ovruntime import ov

RECOMMENDED_IMAGES = 300

_OVERFLOW_FIX = {"any": OverflowFix.ENABLE, "vnni": OverflowFix.FIRST_LAYER}


def resolve_target_cpu(target: str) -> str:
    """``any`` or ``vnni``: what ``target`` means on this box."""
    if target not in TARGET_CPUS:
        raise CalibrationError(f"--target-cpu must be one of {', '.join(TARGET_CPUS)}, got {target!r}")
    if target == "auto":
        return "vnni" if cpuclass.detect().vnni else "any"
    return target
FLAT_CONTRAST = 8.0  # median per-image pixel std below this: dark/blank calibration frames


@dataclass(frozen=True)
class QuantizeOptions:
    subset_size: int = RECOMMENDED_IMAGES
    preset: str = "performance"  # "performance" or "mixed" (measured: benchmarks/int8_gate.py)
    fast_bias_correction: bool = False  # full bias correction (chosen by benchmarks/int8_gate.py)
    model_type: str = "transformer"  # "transformer" or "cnn"
    ignored_names: tuple[str, ...] = ()
    ignored_types: tuple[str, ...] = ()
    smooth_quant_alpha: float | None = None  # SmoothQuant on convolutions (None: NNCF's default, off)
    max_drop: float = 0.01  # labelled: top-1 accuracy drop limit (1 point)
    max_expected_drop: float = 0.01  # unlabelled: expected accuracy drop limit (benchmarks/int8_gate.py)
    validation: Path | None = None
    accuracy_control: bool = True  # labelled validation: revert layers when plain INT8 misses max_drop
    max_reverts: int = 20  # accuracy control: at most this many revert iterations
    # accuracy control ranks every quantized op on this many check images. NNCF takes the images
    # INT8 got wrong and FP32 right first, so 50 holds every informative image unless INT8 breaks
    # more than 50 (50 against 100: docs/benchmarks.md, training).
    ranking_subset: int = 50
    refusal_hint: str | None = None  # what to try, in the refusal message (callers such as `train` know better)
    target_cpu: str = "any"  # TARGET_CPUS: "any" is exact on every x86 class (measured: docs/benchmarks.md)

    def as_record(self) -> dict:
        return {
            "subset_size": self.subset_size,
            "preset": self.preset,
            "fast_bias_correction": self.fast_bias_correction,
            "model_type": self.model_type,
            "ignored_names": list(self.ignored_names),
            "ignored_types": list(self.ignored_types),
            "smooth_quant_alpha": self.smooth_quant_alpha,
            "max_drop": self.max_drop,
            "max_expected_drop": self.max_expected_drop,
            "accuracy_control": self.accuracy_control,
            "target_cpu": self.target_cpu,
        }


@dataclass
class QuantizeReport:
    xml: Path
    passed: bool  # False: refused, saved as model_int8.rejected.xml
    gate: gate.GateResult
    calibration: dict
    warnings: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    method: str = "plain"


class GateFailedError(AccuracyGateError):
    """The evidence says INT8 is worse than the limit; ``report`` holds the measurements."""

    def __init__(self, report: QuantizeReport, message: str):
        super().__init__(message)
        self.report = report


@dataclass
class CheckSet:
    """The images INT8 is checked on, and how (mirrored views, labels)."""

    images: ImageSet
    mirror: bool
    source: str

    @property
    def targets(self) -> list[int] | None:
        return [t for t in self.images.targets if t is not None] if self.images.labelled else None


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
    advanced = AdvancedQuantizationParameters(overflow_fix=_OVERFLOW_FIX[resolve_target_cpu(options.target_cpu)])
    if options.smooth_quant_alpha is not None:
        advanced.smooth_quant_alphas = AdvancedSmoothQuantParameters(convolution=options.smooth_quant_alpha)
    return {
        "preset": preset[options.preset],
        "model_type": nncf.ModelType.TRANSFORMER if options.model_type == "transformer" else None,
        "fast_bias_correction": options.fast_bias_correction,
        "ignored_scope": ignored,
        "advanced_parameters": advanced,
    }


def _dataset(images: ImageSet) -> nncf.Dataset:
    # batch 1: batch-wise statistics skew ranges for transformer-type models
    return nncf.Dataset(images.tensors, lambda t: t[None])


_COMPUTE_OPS = ("Convolution", "GroupConvolution", "MatMul", "Multiply", "Add")
# ops that only move or repeat values: a FakeQuantize behind them still quantizes the input
# (the first convolution's input comes through a Transpose, attention output projections'
# through a Broadcast, some convolutions' through Reshape/Transpose/Reshape)
_SHAPE_ONLY_OPS = frozenset({"Transpose", "Reshape", "Broadcast", "Squeeze", "Unsqueeze"})


def _behind_shape_ops(node):
    while node.get_type_name() in _SHAPE_ONLY_OPS:
        node = node.input(0).get_source_output().get_node()
    return node


def quantized_ops(model: ov.Model) -> set[str]:
    """Names of the compute ops that take a FakeQuantize'd input (run in INT8)."""
    return {
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() in _COMPUTE_OPS
        and any(_behind_shape_ops(i.get_source_output().get_node()).get_type_name() == "FakeQuantize"
                for i in op.inputs())
    }


def _load_calibration(split, pp, folder: Path, warnings: list[str]) -> ImageSet:
    calib = load_set(split.calibration, pp)
    warnings.extend(f"calibration image skipped: {path}: {reason}" for path, reason in calib.failed)
    if len(calib) == 0:
        raise CalibrationError(f"none of the {split.available} images in {folder} could be decoded")
    if len(calib) < RECOMMENDED_IMAGES:
        warnings.append(
            f"calibrating on {len(calib)} images (fewer than the recommended {RECOMMENDED_IMAGES}): "
            "INT8 ranges may be less accurate; add more representative images"
        )
    contrast = float(np.median([t.std() for t in calib.tensors]))
    if contrast < FLAT_CONTRAST:
        warnings.append(
            f"the calibration images are nearly flat (median pixel std {contrast:.1f} of 255: dark, blank or "
            "overexposed frames): INT8 ranges fitted to them clip real images, and the check, made on the same "
            "images, cannot see it; use images like the ones the model will see, or pass --validation DIR"
        )
    if split.available > len(split.calibration):
        warnings.append(
            f"--subset-size {len(split.calibration)} uses {len(split.calibration)} of {split.available} images "
            "for calibration; the rest check INT8 against FP32"
        )
    return calib


def _check_set(split, calib: ImageSet, meta: ModelMetadata, options: QuantizeOptions, warnings: list[str]) -> CheckSet:
    pp = meta.preprocess
    if options.validation is not None:
        images = load_set(list_images(options.validation), pp, options.validation, meta.labels)
        source = "labelled validation images" if images.labelled else "validation images"
        check = CheckSet(images, False, source)
    elif not split.reuse_calibration:
        check = CheckSet(load_set(split.held_out, pp), False, "held-out images (not used for calibration)")
    else:
        held = load_set(split.held_out, pp)
        images = ImageSet(held.paths + calib.paths, held.tensors + calib.tensors, [None] * (len(held) + len(calib)),
                          held.failed)
        source = (f"images, each also mirrored ({len(held)} held out, {len(calib)} calibration images: "
                  "every image calibrates)")
        check = CheckSet(images, True, source)
    warnings.extend(f"check image skipped: {path}: {reason}" for path, reason in check.images.failed)
    if len(check.images) == 0:
        raise CalibrationError(f"none of the images in {options.validation} could be decoded")
    return check


def _accuracy_control(fp32: ov.Model, calib: ImageSet, check: CheckSet, args: dict, options: QuantizeOptions):
    """NNCF's quantize_with_accuracy_control on the labelled check images."""
    items = list(zip(check.images.tensors, check.images.targets))

    def validate(compiled, data):
        request = compiled.create_infer_request()
        right = [float(np.argmax(request.infer({0: t[None]})[0]) == y) for t, y in data]
        return float(np.mean(right)), right

    return nncf.quantize_with_accuracy_control(
        fp32,
        _dataset(calib),
        nncf.Dataset(items, lambda item: item[0][None]),
        validation_fn=validate,
        max_drop=options.max_drop,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(calib),
        preset=args["preset"],
        model_type=args["model_type"],
        fast_bias_correction=args["fast_bias_correction"],
        ignored_scope=args["ignored_scope"],
        advanced_quantization_parameters=args["advanced_parameters"],
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
            max_num_iterations=options.max_reverts,
            ranking_subset_size=min(options.ranking_subset, len(items)),
        ),
    )


_CHECK = EngineOptions(performance_hint="LATENCY")  # the plugin's default, as before


class _Checker:
    """Compiles and checks candidate INT8 models against FP32's predictions (computed once)."""

    def __init__(self, core: ov.Core, fp32: ov.Model, check: CheckSet, options: QuantizeOptions):
        self.core, self.check, self.options = core, check, options
        compiled = compile_for_cpu(core, fp32, "fp32", _CHECK, batch1=False)
        self.fp32_probs = predict_views(compiled, check.images.tensors, check.mirror)

    def __call__(self, int8: ov.Model) -> gate.GateResult:
        compiled = compile_for_cpu(self.core, int8, "int8", _CHECK, batch1=False)  # as `run` compiles INT8
        probs = predict_views(compiled, self.check.images.tensors, self.check.mirror)
        return gate.check(self.fp32_probs, probs, self.check.source, self.options.max_drop,
                          self.options.max_expected_drop, self.check.targets)


@dataclass
class Outcome:
    """The INT8 model chosen, its gate result, how it was made, and every attempt's drop."""

    model: ov.Model
    result: gate.GateResult
    method: str = "plain"
    reverted: list[str] = field(default_factory=list)
    attempts: list[dict] = field(default_factory=list)


def _quantize(fp32, calib: ImageSet, check: CheckSet, checker: _Checker, options: QuantizeOptions, progress) -> Outcome:
    """Plain INT8; with labels and a miss, accuracy control too, keeping whichever loses less."""
    args = _nncf_args(options)
    progress(f"quantizing with NNCF on {len(calib)} images")
    try:
        int8 = nncf.quantize(fp32, _dataset(calib), subset_size=len(calib), **args)
    except nncf.ValidationError as exc:
        raise CalibrationError(f"NNCF rejected the options: {exc}") from exc
    progress(f"checking INT8 against FP32 on {len(check.images)} {check.source}")
    plain = Outcome(int8, checker(int8))
    plain.attempts.append({"method": "plain", "drop": plain.result.drop.estimate})
    if not (options.accuracy_control and check.targets is not None and plain.result.drop.estimate > options.max_drop):
        return plain
    progress("plain INT8 misses --max-drop: accuracy control (reverting sensitive layers to float)")
    controlled = _accuracy_control(fp32, calib, check, args, options)
    reverted = sorted(quantized_ops(int8) - quantized_ops(controlled))
    result = checker(controlled)
    attempts = plain.attempts + [{"method": "accuracy control", "drop": result.drop.estimate, "reverted": len(reverted)}]
    if result.drop.estimate < plain.result.drop.estimate:
        return Outcome(controlled, result, f"accuracy control ({len(reverted)} ops kept in float)", reverted, attempts)
    return Outcome(int8, plain.result, "plain (accuracy control did not do better)", [], attempts)


def quantize_model_dir(
    model_dir: ModelDir,
    calibration_dir: Path,
    options: QuantizeOptions = QuantizeOptions(),
    progress=lambda message: None,
) -> QuantizeReport:
    """Quantize ``model_fp32.xml`` into ``model_int8.xml`` (or ``model_int8.rejected.xml``)."""
    if not model_dir.fp32_xml.is_file():
        raise ModelError(f"{model_dir.fp32_xml} does not exist: run `edgeclass convert` first")
    quiet_torch_cuda_notice()
    options = replace(options, target_cpu=resolve_target_cpu(options.target_cpu))  # "auto" decided once, here
    core = ov.Core()
    fp32 = read_ir(core, model_dir.fp32_xml)
    meta = read_metadata(fp32)
    warnings: list[str] = []
    split = split_folder(calibration_dir, options.subset_size, options.validation)
    progress(f"decoding {len(split.calibration)} calibration images from {calibration_dir}")
    calib = _load_calibration(split, meta.preprocess, calibration_dir, warnings)
    check = _check_set(split, calib, meta, options, warnings)
    checker = _Checker(core, fp32, check, options)
    outcome = _quantize(fp32, calib, check, checker, options, progress)
    result = outcome.result
    warnings.extend(result.notes)
    calibration_record = {
        "images_used": len(calib),
        "images_available": split.available,
        "images_failed": len(calib.failed),
        "files_sha256": files_hash(calib.paths),
        "folder": str(calibration_dir),
        "nncf": nncf.__version__,
        "openvino": ov.get_version(),
        "options": options.as_record(),
        "method": outcome.method,
        "attempts": outcome.attempts,
        "reverted_to_float": outcome.reverted,
        "target_cpu": options.target_cpu,
        "overflow_fix": _OVERFLOW_FIX[options.target_cpu].value,
        "measured_on": cpuclass.detect().as_record(),  # the class the check above ran on
    }
    int8_meta = meta.with_updates(precision="int8", calibration=calibration_record, accuracy=result.to_dict())
    report = QuantizeReport(model_dir.int8_xml, not result.refused, result, calibration_record, warnings,
                            outcome.reverted, outcome.method)
    if result.refused:
        report.xml = model_dir.int8_rejected_xml
        save_ir(outcome.model, int8_meta, report.xml)
        raise GateFailedError(report, _refusal_message(result, model_dir, options))
    save_ir(outcome.model, int8_meta, model_dir.int8_xml)
    model_dir.remove_ir(model_dir.int8_rejected_xml)
    return report


def _refusal_message(result: gate.GateResult, model_dir: ModelDir, options: QuantizeOptions) -> str:
    flag = "--max-drop" if result.criterion == gate.ACCURACY_DROP else "--max-expected-drop"
    fallback = (f"the previous {model_dir.int8_xml.name} stays the default" if model_dir.has_int8
                else "`run` uses FP32")
    hint = options.refusal_hint or (
        "check that the calibration images look like what the model sees; add more of them"
        if options.validation is None else "try a calibration folder like the validation images")
    return (
        f"INT8 refused: {result.summary()} exceeds {flag} {result.limit * 100:.2f} pt even at the interval's "
        f"lower bound; saved as {model_dir.int8_rejected_xml.name}, {fallback} ({hint})"
    )
