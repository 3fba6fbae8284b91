"""`convert`, `quantize`, `info`: building models and showing them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from edgeclass.errors import EXIT_USAGE, EdgeclassError
from edgeclass.cli.app import app, err_console, fail, progress_bars_to_stderr, say, with_status
from edgeclass.cli.options import (
    AccuracyControl, FastBias, Ignore, IgnoreType, Interpolation, MaxDrop, MaxExpectedDrop, ModelType, ModelTypeChoice,
    Preset, PresetChoice, QuantizeFlags, SmoothQuant, SubsetSize, Validation,
)
from edgeclass.cli.render import print_quantize_report


# ----------------------------------------------------------------------------- convert
@app.command()
def convert(
    model: Annotated[str, typer.Option("--model", "-m", help="timm MobileViTv2 name, e.g. mobilevitv2_075.cvnets_in1k.")] = "mobilevitv2_075.cvnets_in1k",
    weights: Annotated[Optional[Path], typer.Option(help="Local checkpoint (.safetensors, .pth, .pt) instead of the hub.")] = None,
    labels: Annotated[Optional[Path], typer.Option(help="Class names, one per line, in class-index order.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Model folder (default models/<model>/).")] = None,
    input_size: Annotated[Optional[int], typer.Option(help="Square input size (default: the model's).")] = None,
    crop_pct: Annotated[Optional[float], typer.Option(min=0.05, max=1.0, help="Centre-crop fraction (default: the model's).")] = None,
    interpolation: Annotated[Optional[Interpolation], typer.Option(help="Resize filter (default: the model's).")] = None,
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="Also quantize to INT8 with NNCF.")] = True,
    calibration: Annotated[Path, typer.Option(help="Folder of calibration images.")] = Path("calibration"),
    subset_size: SubsetSize = 300,
    preset: Preset = PresetChoice.performance,
    fast_bias_correction: FastBias = False,
    model_type: ModelType = ModelTypeChoice.transformer,
    ignore: Ignore = [],  # noqa: B006 - typer needs a literal default
    ignore_type: IgnoreType = [],  # noqa: B006
    smooth_quant_alpha: SmoothQuant = None,
    max_drop: MaxDrop = 1.0,
    max_expected_drop: MaxExpectedDrop = 1.0,
    validation: Validation = None,
    accuracy_control: AccuracyControl = True,
) -> None:
    """Convert MobileViTv2 (hub or checkpoint) to an OpenVINO FP32 IR, then quantize it to INT8."""
    console = err_console()
    progress_bars_to_stderr()
    try:
        from edgeclass.model.convert import ConvertOptions, convert as do_convert
    except ImportError as exc:
        say(console, "error:", f"convert needs the convert extra (torch, timm): pip install 'edgeclass[convert]' ({exc})", "red")
        raise typer.Exit(EXIT_USAGE) from exc
    from edgeclass.cli.render import files_table, metadata_table

    options = ConvertOptions(
        model=model,
        weights=weights,
        labels=labels,
        output=output,
        input_size=input_size,
        crop_pct=crop_pct,
        interpolation=interpolation.value if interpolation else None,
        int8=int8,
        calibration=calibration,
        quantize=QuantizeFlags(subset_size, preset, fast_bias_correction, model_type, ignore, ignore_type,
                               smooth_quant_alpha, max_drop, max_expected_drop, validation, accuracy_control).options(),
    )
    report = with_status(
        console, "starting", lambda update: do_convert(options, progress=lambda stage, msg: update(f"[bold]{stage}[/]: {msg}"))
    )
    console.print(metadata_table(report.metadata, f"converted {report.metadata.model_name}"))
    if report.quantize is not None:
        print_quantize_report(console, report.quantize)
    if report.int8_skipped_reason:
        say(console, "INT8 skipped:", report.int8_skipped_reason)
    console.print(files_table(report.files))
    console.print(
        "times: " + ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items()) + f"\nmodel folder: {report.model_dir.path}",
        highlight=False,
    )


# ----------------------------------------------------------------------------- quantize
@app.command()
def quantize(
    model_dir: Annotated[Path, typer.Argument(help="Model folder holding model_fp32.xml.")],
    calibration: Annotated[Path, typer.Option(help="Folder of calibration images.")] = Path("calibration"),
    subset_size: SubsetSize = 300,
    preset: Preset = PresetChoice.performance,
    fast_bias_correction: FastBias = False,
    model_type: ModelType = ModelTypeChoice.transformer,
    ignore: Ignore = [],  # noqa: B006
    ignore_type: IgnoreType = [],  # noqa: B006
    smooth_quant_alpha: SmoothQuant = None,
    max_drop: MaxDrop = 1.0,
    max_expected_drop: MaxExpectedDrop = 1.0,
    validation: Validation = None,
    accuracy_control: AccuracyControl = True,
) -> None:
    """Quantize an FP32 IR to INT8 with NNCF (no torch needed), then check it against FP32."""
    from edgeclass.modelfiles.folder import resolve_model_dir
    from edgeclass.model.quantize import quantize_model_dir

    console = err_console()
    progress_bars_to_stderr()
    options = QuantizeFlags(subset_size, preset, fast_bias_correction, model_type, ignore, ignore_type,
                            smooth_quant_alpha, max_drop, max_expected_drop, validation, accuracy_control).options()
    report = with_status(
        console, "quantizing", lambda update: quantize_model_dir(resolve_model_dir(model_dir), calibration, options, progress=update)
    )
    print_quantize_report(console, report)
    console.print(f"wrote {report.xml}", highlight=False)


# ----------------------------------------------------------------------------- info
@app.command()
def info(model_dir: Annotated[Optional[Path], typer.Argument(help="Model folder (default: latest under models/).")] = None) -> None:
    """Show a model folder: model, labels, input, IR files, calibration provenance, INT8 accuracy."""
    import openvino as ov

    from edgeclass.modelfiles.ir import read_ir
    from edgeclass.modelfiles.folder import resolve_model_dir
    from edgeclass.modelfiles.metadata import read_metadata
    from edgeclass.cli.render import files_table, metadata_table

    console = Console()
    try:
        md = resolve_model_dir(model_dir)
        core = ov.Core()
        shown = False
        for xml, precision in ((md.fp32_xml, "fp32"), (md.int8_xml, "int8"), (md.int8_rejected_xml, None)):
            if xml.is_file():
                meta = read_metadata(read_ir(core, xml))  # a damaged IR is a ModelError (exit 3)
                console.print(metadata_table(meta, f"{xml.name}", precision and md.model_id(precision)))
                shown = True
        if not shown:
            raise EdgeclassError(f"no IR in {md.path}")
    except EdgeclassError as exc:
        raise fail(err_console(), exc) from exc
    from edgeclass.cli.render import print_training_report

    print_training_report(console, md.path)  # `edgeclass train` folders: held-out summary
    console.print(files_table(sorted(md.path.glob("model_*"))))


