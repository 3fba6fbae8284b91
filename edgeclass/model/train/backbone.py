"""The timm backbone for training: pretrained (hub), a local checkpoint, or random init.

Torch side (the ``convert`` extra). The probe only needs it to get the backbone into an IR
through the ``convert`` path (:func:`edgeclass.model.export.torch_to_ov`); features are then
computed with OpenVINO.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch

from edgeclass.errors import WeightsUnavailableError
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.model import timm_loader
from edgeclass.hashing import sha256_file
from edgeclass.model.timm_loader import check_model_name


@dataclass
class Backbone:
    model: timm_loader.TimmModel  # timm model whose head has ``num_classes`` outputs (0: pooled features)
    name: str
    preprocess: PreprocessConfig
    origin: str
    num_features: int


def load_backbone(
    name: str,
    weights: Path | None = None,
    random_init: bool = False,
    num_classes: int = 0,
    input_size: int | None = None,
    crop_pct: float | None = None,
    interpolation: str | None = None,
    seed: int = 0,
) -> Backbone:
    """Backbone weights from ``weights``, else the hub (through :func:`timm_loader.load_model`),
    else, only when asked (``random_init``), random ones. The head is replaced by a fresh one
    with ``num_classes`` outputs (0: the model returns its pooled features)."""
    check_model_name(name)
    overrides = {"input_size": input_size, "crop_pct": crop_pct, "interpolation": interpolation}
    model: timm_loader.TimmModel
    if weights is not None:
        model = timm_loader.model_from_checkpoint(name, weights, require_head=False)
        origin = f"file:{weights.resolve()} sha256:{sha256_file(weights)}"
    elif random_init:
        torch.manual_seed(seed)
        model = timm.create_model(name, pretrained=False)
        origin = f"random-init (seed {seed})"
    else:
        try:
            loaded = timm_loader.load_model(name, input_size=input_size, crop_pct=crop_pct, interpolation=interpolation)
        except WeightsUnavailableError as exc:
            raise WeightsUnavailableError(
                f"{exc} Or train on random weights with --random-init (weak features: only for "
                "tests and colour-like classes)."
            ) from exc
        model, origin = loaded.model, loaded.weights_origin
    torch.manual_seed(seed)
    model.reset_classifier(num_classes)
    model.eval()
    pp = timm_loader.preprocess_config(model, overrides)  # timm's precedence, as convert uses
    return Backbone(model, name, pp, origin, int(model.num_features))
