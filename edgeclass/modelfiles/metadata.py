"""Model metadata carried inside the IR's ``rt_info``: the single source of truth for ``run``.

Two places are written:

* ``rt_info/model_info/*``: the keys OpenVINO Model API and DL Streamer read (see
  :func:`model_info`), so ``Model.create_model(xml)`` runs the IR on OpenCV frames. Model API
  splits ``labels`` on whitespace, so whitespace inside a label is written as ``_`` there
  (:func:`model_api_label`).
* ``rt_info/edgeclass/metadata``: one JSON document with the exact labels, the preprocessing
  config, provenance, calibration and accuracy records. ``run`` reads this one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from edgeclass.errors import ModelError
from edgeclass.modelfiles.preprocessing import PreprocessConfig

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
    # `edgeclass train`: calibrated top-1 score below which `run` writes "unknown" (--min-score default)
    confidence_threshold: float | None = None

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
                "confidence_threshold": self.confidence_threshold,
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
            confidence_threshold=d.get("confidence_threshold"),
        )


def model_api_label(label: str, index: int) -> str:
    """A label as Model API / DL Streamer see it: they split the list on whitespace, so each run
    of whitespace becomes ``_`` ("tabby, tabby cat" -> "tabby,_tabby_cat"); an empty label
    would vanish from the split and shift every later one, so it becomes ``#<index>``."""
    return "_".join(label.split()) or f"#{index}"


MODEL_API_TOPK = 5  # Model API's top-k (edgeclass's own default); capped at the class count


def model_info(meta: ModelMetadata) -> dict[str, str]:
    """``rt_info/model_info`` as Model API 0.4 parses it (booleans: ``True``/``YES`` only).

    The graph takes a fixed ``H x W`` crop in ``input_channel_order`` with u8 -> f32, mean/std and
    the channel swap inside. ``embedded_processing`` is therefore ``False``: with ``True``, Model
    API hands every frame to the graph untouched, and any frame not already ``H x W`` fails with
    a shape error. With ``False`` it puts only its resize (``resize_type``) in front of the graph
    and applies ``mean_values``/``scale_values``/``reverse_input_channels``, which are identity
    here: the graph already does them, and its input is BGR like OpenCV's frames. Model API's
    ``crop`` (centre square, linear) frames slightly differently from timm's crop_pct, so its
    scores are close to, not equal to, ``edgeclass run``'s (equal for crop_pct 1 on H x W frames).
    """
    pp = meta.preprocess
    info = {
        "model_type": "Classification",
        "labels": " ".join(model_api_label(label, i) for i, label in enumerate(meta.labels)),
        "resize_type": "crop" if pp.crop_mode == "center" else "standard",
        "embedded_processing": "False",
        "mean_values": "0 0 0",
        "scale_values": "1 1 1",
        # callers pass BGR (OpenCV); only IRs that take RGB need Model API to swap
        "reverse_input_channels": "True" if pp.input_channel_order == "RGB" else "False",
        "orig_width": str(pp.input_size[1]),
        "orig_height": str(pp.input_size[0]),
        "topk": str(min(MODEL_API_TOPK, meta.num_classes)),  # Model API fails when k > classes
        "output_raw_scores": "True",  # all class probabilities, as edgeclass computes them
        "multilabel": "False",  # single-label softmax
        "hierarchical": "False",
    }
    if meta.confidence_threshold is not None:
        # `edgeclass train`'s calibrated abstain threshold, for tools that filter on it (DL
        # Streamer); Model API parses it but applies it to multilabel/hierarchical models only
        info["confidence_threshold"] = f"{meta.confidence_threshold:.6g}"
    return info


def write_metadata(model: Any, meta: ModelMetadata) -> None:  # model: an openvino.Model
    """Store ``meta`` in an ``openvino.Model``'s rt_info (both sections)."""
    for key, value in model_info(meta).items():
        model.set_rt_info(value, ["model_info", key])
    model.set_rt_info(meta.to_json(), _META_PATH)


def read_metadata(model: Any) -> ModelMetadata:  # model: an openvino.Model
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
