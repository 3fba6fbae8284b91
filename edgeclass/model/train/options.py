"""What `edgeclass train` is asked to do: options shared by the trainer and fine-tuning."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "mobilevitv2_075.cvnets_in1k"

MODES = ("probe", "finetune")  # --mode


@dataclass(frozen=True)
class FinetuneOptions:
    epochs: int = 15
    patience: int = 3  # epochs without a better held-out loss before stopping
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.05
    seed: int = 0
    train_stages: int | None = None  # only the last N stages (+ head) learn; None: the whole network


@dataclass(frozen=True)
class TrainOptions:
    dataset: Path
    model: str = DEFAULT_MODEL
    weights: Path | None = None
    backbone: Path | None = None  # probe from an edgeclass model folder's FP32 IR: no torch at all
    random_init: bool = False  # explicit opt-in when no pretrained weights are available
    mode: str = "probe"
    output: Path | None = None  # default: models/<dataset folder name>/
    input_size: int | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    int8: bool = True
    max_drop: float = 0.01  # INT8 gate on the held-out split (labelled): top-1 accuracy drop
    accuracy_control: bool = True  # NNCF's accuracy control when plain INT8 misses max_drop
    c: float = 1.0  # probe: inverse L2 strength of the logistic regression
    finetune: FinetuneOptions = FinetuneOptions()
