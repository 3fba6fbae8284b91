"""``model/evaluate.predict_all``: probabilities for every tensor, in order, or an error that says
which input OpenVINO failed on (calibration, the INT8 gate and training features need them all)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeclass.errors import ModelError
from edgeclass.model.evaluate import predict_all
from edgeclass.ovruntime import ov


@pytest.fixture(scope="module")
def compiled() -> ov.CompiledModel:
    """A 1x4x4x3 u8 image -> softmax of its mean per channel (3 classes), static shapes as IRs have."""
    from openvino import opset13 as ops

    x = ops.parameter([1, 4, 4, 3], ov.Type.u8)
    means = ops.reduce_mean(ops.convert(x, ov.Type.f32), ops.constant(np.array([1, 2], np.int64)), False)
    return ov.Core().compile_model(ov.Model([ops.softmax(means, 1)], [x]), "CPU")


def _image(r: int, g: int, b: int) -> np.ndarray:
    return np.broadcast_to(np.array([r, g, b], np.uint8), (4, 4, 3)).copy()


def test_probabilities_of_every_tensor_in_order(compiled):
    tensors = [_image(1, 2, 3), _image(5, 1, 1)[None], _image(0, 0, 9)] * 7  # more than the requests in flight
    probs = predict_all(compiled, tensors)
    assert probs.shape == (21, 3) and probs.dtype == np.float32
    assert probs.argmax(1).tolist() == [2, 0, 2] * 7
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_an_input_openvino_fails_on_is_a_model_error_naming_it(compiled):
    """Not NumPy's TypeError from storing the failure into the float array: OpenVINO's message."""
    tensors = [_image(1, 2, 3), np.zeros((5, 5, 3), np.uint8), _image(0, 0, 9)]
    with pytest.raises(ModelError, match=r"OpenVINO failed on input 2 of 3: .*does not fit"):
        predict_all(compiled, tensors)
