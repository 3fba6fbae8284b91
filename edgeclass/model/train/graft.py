"""Cutting an edgeclass IR before its classifier, and grafting a linear head onto it.

The backbone IR comes from the ``convert`` path (u8 NHWC input with embedded normalisation,
softmax output). Its pooled features are the softmax's input when the timm head was reset to
0 classes. The grafted head is plain OpenVINO ops (MatMul + Add + Softmax), so the result is
a normal edgeclass classifier IR: same input, ``probabilities`` output.
"""

from __future__ import annotations

import numpy as np

from edgeclass.errors import ModelError
from edgeclass.model.export import OUTPUT_NAME
from edgeclass.ovruntime import ov


def _classifier_input(out: ov.Output) -> ov.Output | None:
    """The input of a linear classifier (MatMul with a constant weight, then Add) ending at ``out``."""
    node = out.get_node()
    if node.get_type_name() != "Add":
        return None
    matmul = node.input_value(0).get_node()
    if matmul.get_type_name() != "MatMul" or matmul.input_value(1).get_node().get_type_name() != "Constant":
        return None
    return matmul.input_value(0)


def feature_output(model: ov.Model) -> ov.Output:
    """The pooled features of an edgeclass IR: the input of its final softmax for a headless
    backbone, or of its linear classifier (MatMul + Add) for a classifier IR (``--backbone``)."""
    node = model.get_results()[0].input_value(0).get_node()
    if node.get_type_name() != "Softmax":
        raise ModelError(f"expected the backbone IR to end in a Softmax, found {node.get_type_name()}")
    out = _classifier_input(node.input_value(0))
    out = node.input_value(0) if out is None else out
    if out.get_partial_shape().rank.get_length() != 2:
        raise ModelError(f"backbone features must be N x D, got {out.get_partial_shape()}")
    return out


def features_model(backbone: ov.Model) -> ov.Model:
    """The backbone without its softmax: image -> N x D features."""
    return ov.Model([feature_output(backbone)], backbone.get_parameters(), "features")


def graft_head(backbone: ov.Model, weight: np.ndarray, bias: np.ndarray, name: str = "edgeclass_trained") -> ov.Model:
    """``softmax(features @ weight.T + bias)`` on top of the backbone; ``weight`` is K x D."""
    feats = feature_output(backbone)
    dim = feats.get_partial_shape()[1].get_length()
    if weight.ndim != 2 or weight.shape[1] != dim or bias.shape != (weight.shape[0],):
        raise ModelError(f"head {weight.shape}/{bias.shape} does not fit features of size {dim}")
    w = ov.opset13.constant(np.ascontiguousarray(weight.T, dtype=np.float32), name="trained_head.weight")
    b = ov.opset13.constant(np.asarray(bias, dtype=np.float32)[None, :], name="trained_head.bias")
    logits = ov.opset13.add(ov.opset13.matmul(feats, w, False, False), b, name="trained_head.logits")
    probs = ov.opset13.softmax(logits, 1, name="trained_head.softmax")
    result = ov.opset13.result(probs)
    model = ov.Model([result], backbone.get_parameters(), name)
    model.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    return model
