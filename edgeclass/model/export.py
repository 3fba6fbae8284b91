"""PyTorch MobileViTv2 -> OpenVINO IR with embedded pre/post-processing and metadata.

The IR takes ``N x H x W x 3`` **BGR** ``uint8`` (the centre crop from
:mod:`edgeclass.media.preprocess`, in OpenCV's order: the convention of OpenVINO Model API and
DL Streamer) and returns softmax probabilities. BGR -> RGB (an exact channel gather), u8 -> f32,
mean/std and NHWC -> NCHW are OpenVINO PrePostProcessor steps inside the graph; the batch is
dynamic.
"""

from __future__ import annotations

import logging
import warnings

from openvino.preprocess import PrePostProcessor

from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.ovruntime import ov

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


def embed_processing(model: ov.Model, pp: PreprocessConfig) -> ov.Model:
    """Wrap a float NCHW classifier with u8 NHWC input normalisation and a softmax output.

    The input takes ``pp.input_channel_order`` (BGR for new folders); when the network was
    trained on the other order (timm: RGB), the first step reverses the channels. A folder
    written before that step existed is this with ``input_channel_order == channel_order``.
    """
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    steps = ppp.input().preprocess()
    if pp.swap_in_graph:
        steps.reverse_channels()  # a Gather on the channel axis: exact
    steps.convert_element_type(ov.Type.f32)
    if any(m != 0.0 for m in pp.mean):
        steps.mean([m * 255.0 for m in pp.mean])
    steps.scale([s * 255.0 for s in pp.std])
    ppp.output().postprocess().custom(lambda out: ov.opset13.softmax(out, 1).output(0))
    model = ppp.build()
    model.inputs[0].get_tensor().set_names({INPUT_NAME})
    model.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    return model


def quiet_torch_cuda_notice() -> None:
    """OVC and NNCF import NNCF's torch extensions (when torch is installed), whose import logs
    "No CUDA runtime is found" on a CPU box: not the user's business. Does not import torch."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


def torch_to_ov(torch_model, pp: PreprocessConfig) -> ov.Model:
    """Trace with a fixed height/width (MobileViTv2 computes patch counts in Python) and a dynamic batch."""
    import torch
    from openvino.tools.ovc import convert_model  # not ov.convert_model: see edgeclass.ovruntime

    h, w = pp.input_size
    example = torch.zeros(1, 3, h, w)
    with torch.no_grad(), warnings.catch_warnings():
        # convert_model traces with torch.jit: torch's deprecation notice is not the user's
        # business, and the tracer's warnings about MobileViTv2's Python shape arithmetic are
        # exactly what the fixed input size above makes safe
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace", category=FutureWarning)
        quiet_torch_cuda_notice()
        model = convert_model(torch_model, example_input=example, input=[ov.PartialShape([-1, 3, h, w])])
    return embed_processing(model, pp)



