"""`train`: your own classes, and the held-out summary `info` shows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeclass.errors import EXIT_USAGE
from edgeclass.cli.app import app, err_console, fail, progress_bars_to_stderr, say, with_status
from edgeclass.cli.render import escape_markup, print_training_summary
from edgeclass.cli.options import AccuracyControl, Interpolation, MaxDrop, TrainMode


# ----------------------------------------------------------------------------- train
@app.command()
def train(
    dataset: Annotated[Path, typer.Argument(help="Folder with one sub-folder of images per class (ImageFolder); optional val/ is the held-out split.")],
    model: Annotated[str, typer.Option("--model", "-m", help="timm MobileViTv2 backbone.")] = "mobilevitv2_075.cvnets_in1k",
    weights: Annotated[Optional[Path], typer.Option(help="Backbone checkpoint (.safetensors, .pth, .pt) instead of the hub; its head is dropped.")] = None,
    random_init: Annotated[bool, typer.Option("--random-init", help="Random backbone weights when no pretrained ones are available (weak features).")] = False,
    backbone: Annotated[Optional[Path], typer.Option(help="probe: use this model folder's FP32 IR (from convert or train) as the backbone, its head cut off: no torch needed.")] = None,
    mode: Annotated[TrainMode, typer.Option(help="probe: a linear head on frozen OpenVINO features (fast); finetune: the network (or its last --train-stages) in torch.")] = TrainMode("probe"),
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Model folder (default models/<dataset folder name>/).")] = None,
    input_size: Annotated[Optional[int], typer.Option(min=32, help="Square input size (default: the model's).")] = None,
    crop_pct: Annotated[Optional[float], typer.Option(min=0.05, max=1.0, help="Centre-crop fraction (default: the model's).")] = None,
    interpolation: Annotated[Optional[Interpolation], typer.Option(help="Resize filter (default: the model's).")] = None,
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="Also quantize to INT8 (gate: the held-out split).")] = True,
    max_drop: MaxDrop = 1.0,
    accuracy_control: AccuracyControl = True,
    c: Annotated[float, typer.Option("--c", min=1e-6, help="probe: inverse L2 strength of the logistic regression.")] = 1.0,
    epochs: Annotated[int, typer.Option(min=1, help="finetune: at most this many epochs.")] = 15,
    patience: Annotated[int, typer.Option(min=1, help="finetune: stop after this many epochs without a better held-out loss.")] = 3,
    batch_size: Annotated[int, typer.Option(min=1, help="finetune: images per step.")] = 32,
    lr: Annotated[float, typer.Option(min=1e-8, help="finetune: peak learning rate (AdamW, one-cycle).")] = 5e-4,
    train_stages: Annotated[Optional[int], typer.Option(min=1, help="finetune: train only the last N stages and the head (MobileViTv2 has 5); the rest stays frozen. Default: the whole network.")] = None,
) -> None:
    """Train your own classes on a CPU: backbone -> linear head (or fine-tuning) -> FP32 + INT8 IR + report."""
    console = err_console()
    progress_bars_to_stderr()
    if weights is not None and random_init:
        say(console, "error:", "--weights and --random-init exclude each other", "red")
        raise typer.Exit(EXIT_USAGE)
    try:
        from edgeclass.model.train.options import FinetuneOptions, TrainOptions
        from edgeclass.model.train.trainer import train as do_train
    except ImportError as exc:
        say(console, "error:", f"train needs the convert extra (torch, timm): pip install 'edgeclass[convert]' ({exc})", "red")
        raise typer.Exit(EXIT_USAGE) from exc
    from edgeclass.cli.render import files_table

    options = TrainOptions(
        dataset=dataset, model=model, weights=weights, backbone=backbone, random_init=random_init, mode=mode.value, output=output,
        input_size=input_size, crop_pct=crop_pct, interpolation=interpolation.value if interpolation else None,
        int8=int8, max_drop=max_drop / 100.0, accuracy_control=accuracy_control, c=c,
        finetune=FinetuneOptions(epochs=epochs, patience=patience, batch_size=batch_size, lr=lr, train_stages=train_stages),
    )
    report = with_status(
        console, "starting", lambda update: do_train(options, progress=lambda stage, msg: update(f"[bold]{stage}[/]: {escape_markup(msg)}"))
    )
    for w in report.warnings:
        say(console, "warning:", w)
    if report.quantize is not None:
        console.print(f"INT8: {'kept' if report.gate_error is None else 'refused'} ({report.quantize.xml.name})", highlight=False)
    print_training_summary(console, report.report)
    console.print(files_table(report.files))
    console.print("times: " + ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
                  + f"\nmodel folder: {report.model_dir.path}", highlight=False)
    if report.gate_error is not None:
        raise fail(console, report.gate_error)


