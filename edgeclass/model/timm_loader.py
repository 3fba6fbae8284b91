"""Loading MobileViTv2 through timm: from the Hugging Face hub, or a local checkpoint.

Needs the ``convert`` extra (torch, timm, safetensors); nothing else in edgeclass imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import timm
import torch
from timm.data import ImageNetInfo, resolve_data_config

from edgeclass.hashing import sha256_file
from edgeclass.errors import LabelsError, UsageError, WeightsUnavailableError
from edgeclass.media.preprocess import PreprocessConfig

# A timm model: an nn.Module with timm's own members (get_classifier, reset_classifier, num_features,
# pretrained_cfg, stages, ...), which torch's types answer as `Tensor | Module` (nn.Module.__getattr__).
TimmModel = Any

DEFAULT_MODEL = "mobilevitv2_075.cvnets_in1k"
FAMILY = "mobilevitv2"
HEAD_KEY = "head.fc.weight"


@dataclass
class LoadedModel:
    model: TimmModel
    name: str  # architecture.tag as given/resolved
    labels: tuple[str, ...]
    preprocess: PreprocessConfig
    weights_origin: str
    num_params: int


def valid_model_names() -> list[str]:
    tagged = timm.list_models(f"{FAMILY}*", pretrained=True)
    return sorted(set(tagged) | set(timm.list_models(f"{FAMILY}*")))


def check_model_name(name: str) -> str:
    valid = valid_model_names()
    if name not in valid:
        raise UsageError(
            f"unknown model {name!r}: edgeclass converts MobileViTv2 only. Valid names:\n  " + "\n  ".join(valid)
        )
    return name


def read_labels(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabelsError(f"cannot read labels file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise LabelsError(f"labels file {path} is not UTF-8") from exc
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if any(not label for label in labels):
        raise LabelsError(f"labels file {path} has an empty line among its labels")
    return tuple(labels)


def _unwrap_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "module"):
            inner = obj.get(key)
            if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj:
        raise WeightsUnavailableError("the checkpoint holds no state dict")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        k = k[len("module."):] if k.startswith("module.") else k
        out[k] = v
    return out


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` or ``.pth``/``.pt`` checkpoint without unpickling objects."""
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            import safetensors.torch

            return _unwrap_state_dict(safetensors.torch.load_file(str(path), device="cpu"))
        if path.suffix in (".pth", ".pt", ".bin"):
            return _unwrap_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    except WeightsUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - unpickling refusals and corrupt files alike
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsUnavailableError(
            f"cannot load {path}: {first} (only plain tensors are accepted: weights_only=True)"
        ) from exc
    raise WeightsUnavailableError(f"unsupported weights format {path.suffix!r}: use .safetensors, .pth or .pt")


def _resolve_labels(num_classes: int, labels_file: Path | None) -> tuple[str, ...]:
    if labels_file is not None:
        labels = read_labels(labels_file)
        if len(labels) != num_classes:
            raise LabelsError(
                f"{labels_file} has {len(labels)} labels but the model has {num_classes} classes "
                "(one label per line, in class-index order)"
            )
        return labels
    if num_classes == 1000:
        return tuple(ImageNetInfo().label_descriptions())
    raise LabelsError(
        f"the checkpoint has {num_classes} classes: pass --labels FILE with {num_classes} names, one per line"
    )


def preprocess_config(model: torch.nn.Module, overrides: dict[str, Any]) -> PreprocessConfig:
    # timm's precedence: explicit args > the model's pretrained_cfg > timm defaults
    args = {k: v for k, v in overrides.items() if v is not None}
    if "input_size" in args:
        args["input_size"] = (3, args["input_size"], args["input_size"])
    cfg = resolve_data_config(args=args, model=model)
    return PreprocessConfig(
        input_size=(int(cfg["input_size"][1]), int(cfg["input_size"][2])),
        crop_pct=float(cfg["crop_pct"]),
        interpolation=str(cfg["interpolation"]),
        mean=cast("tuple[float, float, float]", tuple(float(m) for m in cfg["mean"])),  # timm: 3 channels
        std=cast("tuple[float, float, float]", tuple(float(s) for s in cfg["std"])),  # timm: 3 channels
        crop_mode=str(cfg.get("crop_mode", "center")),
    )


def model_from_checkpoint(name: str, weights: Path, require_head: bool) -> TimmModel:
    """A timm model built to the checkpoint's head (class count from ``head.fc.weight``; none:
    a 0-class head, unless ``require_head``) with every tensor loaded; else a clear error."""
    state = load_checkpoint(weights)
    if require_head and HEAD_KEY not in state:
        raise WeightsUnavailableError(f"{weights} has no {HEAD_KEY}: not a timm MobileViTv2 checkpoint")
    num_classes = int(state[HEAD_KEY].shape[0]) if HEAD_KEY in state else 0
    model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches: another width
        first = str(exc).strip().splitlines()[1:2] or [str(exc)]
        raise WeightsUnavailableError(
            f"{weights} does not fit {name}: {first[0].strip()} (is --model the right width?)"
        ) from exc
    if missing or unexpected:
        raise WeightsUnavailableError(
            f"{weights} does not fit {name}: {len(missing)} missing and {len(unexpected)} unexpected "
            f"tensors (e.g. {(list(missing) + list(unexpected))[:3]}); is --model the right width?"
        )
    return model


def load_model(
    name: str = DEFAULT_MODEL,
    weights: Path | None = None,
    labels_file: Path | None = None,
    input_size: int | None = None,
    crop_pct: float | None = None,
    interpolation: str | None = None,
) -> LoadedModel:
    """Build the timm model with weights from the hub (``weights=None``) or a checkpoint."""
    check_model_name(name)
    model: TimmModel
    if weights is None:
        try:
            model = timm.create_model(name, pretrained=True)
        except OSError as exc:
            raise WeightsUnavailableError(_offline_advice(name, exc)) from exc
        except Exception as exc:  # noqa: BLE001 - network stacks raise many types
            if "connect" in str(exc).lower() or "offline" in str(exc).lower():
                raise WeightsUnavailableError(_offline_advice(name, exc)) from exc
            raise
        origin = f"hf-hub:{model.pretrained_cfg.get('hf_hub_id') or name}"
    else:
        model = model_from_checkpoint(name, weights, require_head=True)
        origin = f"file:{weights.resolve()} sha256:{sha256_file(weights)}"
    model.eval()
    num_classes = int(model.get_classifier().out_features)
    labels = _resolve_labels(num_classes, labels_file)
    preprocess = preprocess_config(
        model, {"input_size": input_size, "crop_pct": crop_pct, "interpolation": interpolation}
    )
    num_params = sum(p.numel() for p in model.parameters())
    return LoadedModel(model, name, labels, preprocess, origin, num_params)


def _offline_advice(name: str, exc: Exception) -> str:
    from huggingface_hub import constants

    return (
        f"cannot get the weights of {name} from the Hugging Face hub, and they are not in the cache "
        f"({constants.HF_HUB_CACHE}). Either pass --weights FILE (.safetensors/.pth), or populate the "
        f"cache on a machine with network (`edgeclass convert --model {name}` there, then copy "
        f"$HF_HOME/hub) and set HF_HOME. ({type(exc).__name__})"
    )
