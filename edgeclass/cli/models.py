"""`convert`, `quantize`, `info`: building models and showing them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeclass.errors import EXIT_USAGE, EdgeclassError
from edgeclass.cli.app import app, err_console, fail, out_console, progress_bars_to_stderr, say, with_status
from edgeclass.cli.options import Interpolation, QuantizeFlags, with_quantize_options


# ----------------------------------------------------------------------------- convert
@app.command()
@with_quantize_options
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
    *,
    quantize_flags: QuantizeFlags,
) -> None:
    """Convert MobileViTv2 (hub or checkpoint) to an OpenVINO FP32 IR, then quantize it to INT8."""
    console = err_console()
    progress_bars_to_stderr()
    try:
        from edgeclass.model.convert import ConvertOptions, convert as do_convert
    except ImportError as exc:
        say(console, "error:", f"convert needs the convert extra (torch, timm): pip install 'edgeclass[convert]' ({exc})", "red")
        raise typer.Exit(EXIT_USAGE) from exc
    from edgeclass.cli.render import files_table, metadata_table, print_quantize_report

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
        quantize=quantize_flags.options(),
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
@with_quantize_options
def quantize(
    model_dir: Annotated[Path, typer.Argument(help="Model folder holding model_fp32.xml.")],
    calibration: Annotated[Path, typer.Option(help="Folder of calibration images.")] = Path("calibration"),
    *,
    quantize_flags: QuantizeFlags,
) -> None:
    """Quantize an FP32 IR to INT8 with NNCF (no torch needed), then check it against FP32."""
    from edgeclass.cli.render import print_quantize_report
    from edgeclass.modelfiles.folder import resolve_model_dir
    from edgeclass.model.quantize import quantize_model_dir

    console = err_console()
    progress_bars_to_stderr()
    options = quantize_flags.options()
    report = with_status(
        console, "quantizing", lambda update: quantize_model_dir(resolve_model_dir(model_dir), calibration, options, progress=update)
    )
    print_quantize_report(console, report)
    console.print(f"wrote {report.xml}", highlight=False)


# ----------------------------------------------------------------------------- info
@app.command()
def info(model_dir: Annotated[Optional[Path], typer.Argument(help="Model folder (default: latest under models/).")] = None) -> None:
    """Show a model folder: model, labels, input, IR files, calibration provenance, INT8 accuracy."""
    from edgeclass.cli.render import files_table, metadata_table
    from edgeclass.modelfiles.folder import resolve_model_dir
    from edgeclass.modelfiles.ir import describe_irs

    console = out_console()
    try:
        md = resolve_model_dir(model_dir)
        for ir in describe_irs(md):  # a damaged IR is a ModelError (exit 3)
            console.print(metadata_table(ir.metadata, ir.xml.name, ir.model_id))
    except EdgeclassError as exc:
        raise fail(err_console(), exc) from exc
    from edgeclass.cli.render import print_training_report

    print_training_report(console, md.path)  # `edgeclass train` folders: held-out summary
    console.print(files_table(sorted(md.path.glob("model_*"))))


