"""Runs inside OpenVINO Model API's own virtual environment (tests/test_modelapi.py builds it):
load an edgeclass IR the way Model API's users do and classify BGR frames from cv2.imread.

    python modelapi_probe.py MODEL.xml IMAGE... > result.json

Prints one JSON document: the parameters Model API read from rt_info/model_info, and per
image its top labels (id, name, score) and raw scores. Nothing from edgeclass is imported.
"""

from __future__ import annotations

import json
import sys

import cv2
from model_api.adapters import OpenvinoAdapter, create_core
from model_api.models import Model


def main(xml: str, images: list[str]) -> dict:
    # real f32 like `edgeclass run --precision fp32` (CPUs with bf16 otherwise run FP32 IRs in
    # bf16). Through an adapter: 0.4.7's create_model(core=...) fails (plugin_config unset).
    adapter = OpenvinoAdapter(create_core(), xml, device="CPU", plugin_config={"INFERENCE_PRECISION_HINT": "f32"})
    # as read from the IR, before the wrapper embeds its own resize and notes that it did
    declared = {key: adapter.get_rt_info(["model_info", key]).astype(str)
                for key in ("embedded_processing", "reverse_input_channels", "mean_values", "scale_values")}
    model = Model.create_model(adapter)
    p = model.params
    parsed = {
        "wrapper": type(model).__name__,
        "declared": declared,
        "labels": list(p.labels or []),
        "reverse_input_channels": bool(p.reverse_input_channels),
        "resize_type": p.resize_type,
        "topk": p.topk,
        "output_raw_scores": bool(p.output_raw_scores),
        "multilabel": bool(p.multilabel),
    }
    results = []
    for path in images:
        frame = cv2.imread(path)  # BGR, any size: what Model API's users pass
        r = model(frame)
        results.append({
            "path": path,
            "shape": list(frame.shape),
            "top": [[int(label.id), str(label.name), float(label.confidence)] for label in r.top_labels],
            "raw": [float(x) for x in r.raw_scores],
        })
    return {"params": parsed, "results": results}


if __name__ == "__main__":
    json.dump(main(sys.argv[1], sys.argv[2:]), sys.stdout)
