"""Option types shared by the commands, and the enums Typer binds to the library's own tuples
(so a bad value exits 2 before any work, and a new value in the library is a new choice here)."""

from __future__ import annotations

import enum
import functools
import inspect
from dataclasses import dataclass, fields
from pathlib import Path
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from edgeclass.model.train.options import MODES
from edgeclass.modelfiles.folder import PRECISIONS
from edgeclass.modelfiles.preprocessing import INTERPOLATIONS
from edgeclass.modelfiles.provenance import TARGET_CPUS
from edgeclass.run.output import FORMATS


def _choices(name: str, values: Iterable[str]) -> Any:
    """A ``str`` enum whose members are ``values`` (what Typer turns into a choice option)."""
    return enum.Enum(name, {v: v for v in values}, type=str)


if TYPE_CHECKING:  # to a type checker each choice is a str enum; its members are the library's values
    class _Choice(str, enum.Enum): ...

    Precision = _Choice
    OutputFormat = _Choice
    TrainMode = _Choice
    Interpolation = _Choice
    TargetCpuChoice = _Choice
else:
    Precision = _choices("Precision", PRECISIONS)
    OutputFormat = _choices("OutputFormat", FORMATS)
    TrainMode = _choices("TrainMode", MODES)
    Interpolation = _choices("Interpolation", INTERPOLATIONS)
    TargetCpuChoice = _choices("TargetCpuChoice", TARGET_CPUS)


class PresetChoice(str, enum.Enum):
    performance = "performance"
    mixed = "mixed"


class ModelTypeChoice(str, enum.Enum):
    transformer = "transformer"
    cnn = "cnn"



Verbose = Annotated[bool, typer.Option("--verbose", help="Also let the decoding libraries (OpenCV, libpng, libjpeg, libtiff, Pillow) print their own warnings on stderr.")]


SubsetSize = Annotated[int, typer.Option(help="Calibration images used at most (NNCF subset_size).", min=1)]
Preset = Annotated[PresetChoice, typer.Option(help="NNCF preset: performance (symmetric) or mixed (asymmetric activations).")]
FastBias = Annotated[
    bool,
    typer.Option("--fast-bias-correction/--no-fast-bias-correction", help="Fast or full NNCF bias correction."),
]
ModelType = Annotated[ModelTypeChoice, typer.Option(help="NNCF model type.")]
Ignore = Annotated[list[str], typer.Option("--ignore", help="Keep this node (by name) in float. Repeatable.")]
IgnoreType = Annotated[
    list[str], typer.Option("--ignore-type", help="Keep nodes of this OpenVINO type (e.g. Multiply) in float. Repeatable.")
]
SmoothQuant = Annotated[
    Optional[float], typer.Option(min=0.0, max=1.0, help="SmoothQuant alpha for convolutions (default: off).")
]
MaxDrop = Annotated[
    float,
    typer.Option(min=0.0, max=100.0,
                 help="INT8 gate with a labelled --validation folder: refuse INT8 when its top-1 accuracy drop, "
                      "in points, is above this even at the 95% interval's lower bound."),
]
MaxExpectedDrop = Annotated[
    float,
    typer.Option(min=0.0, max=100.0,
                 help="INT8 gate without labels: refuse INT8 when its expected accuracy drop (FP32's probabilities "
                      "as soft labels), in points, is above this even at the 95% interval's lower bound."),
]
AccuracyControl = Annotated[
    bool,
    typer.Option("--accuracy-control/--no-accuracy-control",
                 help="With labelled check images: when plain INT8 misses --max-drop, let NNCF keep the most "
                      "sensitive layers in float (minutes). --no-accuracy-control: plain INT8 or refusal, fast."),
]
Validation = Annotated[
    Optional[Path],
    typer.Option(help="Images to check INT8 on (default: the calibration folder's own). Sub-folders named by label "
                      "or class id make it labelled: accuracy drop, and accuracy control when INT8 misses --max-drop."),
]
TargetCpu = Annotated[
    TargetCpuChoice,
    typer.Option(help="CPUs the INT8 model is made for: any (7-bit weights, exact on every x86 CPU, also those "
                      "without VNNI), vnni (8-bit weights, only where every box has VNNI or AMX), auto (vnni on a "
                      "box with VNNI, else any)."),
]


@dataclass(frozen=True)
class QuantizeFlags:
    """The quantize options shared by `convert` and `quantize`, as parsed."""

    subset_size: int
    preset: PresetChoice
    fast_bias_correction: bool
    model_type: ModelTypeChoice
    ignore: list[str]
    ignore_type: list[str]
    smooth_quant_alpha: float | None
    max_drop: float
    max_expected_drop: float
    validation: Path | None
    accuracy_control: bool = True
    target_cpu: TargetCpuChoice = TargetCpuChoice("any")

    def options(self):
        from edgeclass.model.quantize import QuantizeOptions

        return QuantizeOptions(
            subset_size=self.subset_size,
            preset=self.preset.value,
            fast_bias_correction=self.fast_bias_correction,
            model_type=self.model_type.value,
            ignored_names=tuple(self.ignore or ()),
            ignored_types=tuple(self.ignore_type or ()),
            smooth_quant_alpha=self.smooth_quant_alpha,
            max_drop=self.max_drop / 100.0,
            max_expected_drop=self.max_expected_drop / 100.0,
            validation=self.validation,
            accuracy_control=self.accuracy_control,
            target_cpu=self.target_cpu.value,
        )




_QUANTIZE_OPTIONS = {  # QuantizeFlags field: (Typer type, default), in --help order
    "subset_size": (SubsetSize, 300),
    "preset": (Preset, PresetChoice.performance),
    "fast_bias_correction": (FastBias, False),
    "model_type": (ModelType, ModelTypeChoice.transformer),
    "ignore": (Ignore, []),
    "ignore_type": (IgnoreType, []),
    "smooth_quant_alpha": (SmoothQuant, None),
    "max_drop": (MaxDrop, 1.0),
    "max_expected_drop": (MaxExpectedDrop, 1.0),
    "validation": (Validation, None),
    "accuracy_control": (AccuracyControl, True),
    "target_cpu": (TargetCpu, TargetCpuChoice("any")),
}
assert list(_QUANTIZE_OPTIONS) == [f.name for f in fields(QuantizeFlags)]


def with_quantize_options(command):
    """Give a command the quantize options (the same names, types, defaults and help wherever
    INT8 is made): its own parameter ``quantize_flags: QuantizeFlags`` is replaced, for Typer, by
    one option per flag, and the command receives them parsed into one :class:`QuantizeFlags`."""
    own = inspect.signature(command, eval_str=True)
    kept = [p for p in own.parameters.values() if p.name != "quantize_flags"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
             for name, (kind, default) in _QUANTIZE_OPTIONS.items()]

    @functools.wraps(command)
    def parsed(**kwargs):
        flags = QuantizeFlags(**{name: kwargs.pop(name) for name in _QUANTIZE_OPTIONS})
        return command(quantize_flags=flags, **kwargs)

    parsed.__signature__ = own.replace(parameters=kept + added)
    parsed.__annotations__ = {k: v for k, v in command.__annotations__.items() if k != "quantize_flags"}
    return parsed
