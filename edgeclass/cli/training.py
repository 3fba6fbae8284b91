"""`train`: your own classes, and the held-out summary `info` shows."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from edgeclass.errors import EXIT_USAGE
from edgeclass.cli.app import app, err_console, fail, progress_bars_to_stderr, say
from edgeclass.cli.models import AccuracyControl, Interpolation, MaxDrop, _with_status


# ----------------------------------------------------------------------------- train
class TrainMode(str, enum.Enum):
    probe = "probe"
    finetune = "finetune"


def _pct(value) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _training_table(report: dict):
    """Held-out summary of an `edgeclass train` report (report.json)."""
    from rich.table import Table

    h, t = report["heldout"], report["heldout"]["threshold"]
    table = Table(title="held-out evaluation (edgeclass train)", title_justify="left")
    for col in ("class", "precision", "recall", "images", "most often taken for"):
        table.add_column(col, justify="left" if col in ("class", "most often taken for") else "right")
    for i, row in enumerate(h["per_class"]):
        wrong = [(n, report["labels"][j]) for j, n in enumerate(h["confusion"][i]) if j != i and n]
        taken = f"{max(wrong)[1]} ({max(wrong)[0]})" if wrong else ""
        table.add_row(escape(row["label"]), _pct(row["precision"]), _pct(row["recall"]), str(row["support"]), escape(taken))
    table.caption = (f"temperature {report['calibration']['temperature']:.3f}; default --min-score {t['value']:.3f}: "
                     f"{t['unknown']} of {h['images']} held-out images 'unknown', accuracy of the rest {_pct(t['accuracy_kept'])}; "
                     f"{len(report.get('skipped') or [])} images skipped; details in report.html")
    return table


def print_training_report(console: Console, model_dir: Path) -> None:
    from edgeclass.model.train.evaluate_report import read_report

    report = read_report(model_dir)
    if report is not None:
        _print_training_summary(console, report)


def _print_training_summary(console: Console, report: dict) -> None:
    h = report["heldout"]
    console.print(f"trained ({report['mode']}) on {report['dataset']}: held-out accuracy {_pct(h['accuracy'])} on "
                  f"{h['images']} images, {report['evaluated_precision']} model", highlight=False, soft_wrap=True)
    console.print(_training_table(report))


@app.command()
def train(
    dataset: Annotated[Path, typer.Argument(help="Folder with one sub-folder of images per class (ImageFolder); optional val/ is the held-out split.")],
    model: Annotated[str, typer.Option("--model", "-m", help="timm MobileViTv2 backbone.")] = "mobilevitv2_075.cvnets_in1k",
    weights: Annotated[Optional[Path], typer.Option(help="Backbone checkpoint (.safetensors, .pth, .pt) instead of the hub; its head is dropped.")] = None,
    random_init: Annotated[bool, typer.Option("--random-init", help="Random backbone weights when no pretrained ones are available (weak features).")] = False,
    backbone: Annotated[Optional[Path], typer.Option(help="probe: use this model folder's FP32 IR (from convert or train) as the backbone, its head cut off: no torch needed.")] = None,
    mode: Annotated[TrainMode, typer.Option(help="probe: a linear head on frozen OpenVINO features (fast); finetune: the network (or its last --train-stages) in torch.")] = TrainMode.probe,
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
    from edgeclass.report import files_table

    options = TrainOptions(
        dataset=dataset, model=model, weights=weights, backbone=backbone, random_init=random_init, mode=mode.value, output=output,
        input_size=input_size, crop_pct=crop_pct, interpolation=interpolation.value if interpolation else None,
        int8=int8, max_drop=max_drop / 100.0, accuracy_control=accuracy_control, c=c,
        finetune=FinetuneOptions(epochs=epochs, patience=patience, batch_size=batch_size, lr=lr, train_stages=train_stages),
    )
    report = _with_status(
        console, "starting", lambda update: do_train(options, progress=lambda stage, msg: update(f"[bold]{stage}[/]: {escape(msg)}"))
    )
    for w in report.warnings:
        say(console, "warning:", w)
    if report.quantize is not None:
        console.print(f"INT8: {'kept' if report.gate_error is None else 'refused'} ({report.quantize.xml.name})", highlight=False)
    _print_training_summary(console, report.report)
    console.print(files_table(report.files))
    console.print("times: " + ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
                  + f"\nmodel folder: {report.model_dir.path}", highlight=False)
    if report.gate_error is not None:
        raise fail(console, report.gate_error)


