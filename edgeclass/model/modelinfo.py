"""Model metadata carried inside the IR's ``rt_info``: the single source of truth for ``run``.

Two places are written:

* ``rt_info/model_info/*``: OpenVINO Model API keys (``model_type``, ``labels``, ``resize_type``,
  ``mean_values``, ``scale_values``, ``reverse_input_channels``, ``embedded_processing``), so
  other OpenVINO tools understand the model. Model API joins list values with spaces, so spaces
  inside a label are written as underscores there.
* ``rt_info/edgeclass/metadata``: one JSON document with the exact labels, the preprocessing
  config, provenance, calibration and accuracy records. ``run`` reads this one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from edgeclass.errors import ModelError
from edgeclass.media.preprocess import PreprocessConfig

SCHEMA_VERSION = 1
_META_PATH = ["edgeclass", "metadata"]


@dataclass(frozen=True)
class ModelMetadata:
    labels: tuple[str, ...]
    preprocess: PreprocessConfig
    model_name: str  # timm architecture + tag, e.g. "mobilevitv2_075.cvnets_in1k"
    weights_origin: str  # "hf-hub:timm/..." or "file:/path (sha256 ...)"
    precision: str = "fp32"  # weights format of this IR: "fp32" or "int8"
    num_params: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def with_updates(self, **changes: Any) -> ModelMetadata:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": SCHEMA_VERSION,
                "labels": list(self.labels),
                "preprocess": self.preprocess.to_dict(),
                "model_name": self.model_name,
                "weights_origin": self.weights_origin,
                "precision": self.precision,
                "num_params": self.num_params,
                "versions": self.versions,
                "calibration": self.calibration,
                "accuracy": self.accuracy,
                "extra": self.extra,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        d = json.loads(text)
        if d.get("schema") != SCHEMA_VERSION:
            raise ModelError(f"unsupported edgeclass metadata schema {d.get('schema')!r}")
        return cls(
            labels=tuple(d["labels"]),
            preprocess=PreprocessConfig.from_dict(d["preprocess"]),
            model_name=d["model_name"],
            weights_origin=d["weights_origin"],
            precision=d.get("precision", "fp32"),
            num_params=d.get("num_params"),
            versions=d.get("versions") or {},
            calibration=d.get("calibration"),
            accuracy=d.get("accuracy"),
            extra=d.get("extra") or {},
        )


def write_metadata(model, meta: ModelMetadata) -> None:
    """Store ``meta`` in an ``openvino.Model``'s rt_info (both sections)."""
    pp = meta.preprocess
    model_info = {
        "model_type": "Classification",
        "labels": " ".join(label.replace(" ", "_") for label in meta.labels),
        "resize_type": "crop" if pp.crop_mode == "center" else "standard",
        "mean_values": " ".join(f"{m * 255:g}" for m in pp.mean),
        "scale_values": " ".join(f"{s * 255:g}" for s in pp.std),
        "reverse_input_channels": "True" if pp.channel_order == "RGB" else "False",
        "embedded_processing": "True",
        "orig_width": str(pp.input_size[1]),
        "orig_height": str(pp.input_size[0]),
        "topk": "5",
    }
    for key, value in model_info.items():
        model.set_rt_info(value, ["model_info", key])
    model.set_rt_info(meta.to_json(), _META_PATH)


def read_metadata(model) -> ModelMetadata:
    """Read edgeclass metadata from an ``openvino.Model``; :class:`ModelError` if absent."""
    if not model.has_rt_info(_META_PATH):
        raise ModelError(
            "this IR has no edgeclass metadata (rt_info/edgeclass/metadata); "
            "create it with `edgeclass convert`"
        )
    try:
        return ModelMetadata.from_json(model.get_rt_info(_META_PATH).astype(str))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"edgeclass metadata in the IR is invalid: {exc}") from exc
