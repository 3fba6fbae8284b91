"""Image preprocessing: the one code path shared by calibration, validation and inference.

The reference is timm's evaluation transform for MobileViTv2 (``resolve_data_config`` +
``create_transform``): PIL ``Resize(shorter side)`` with an *antialiased* filter, then
``CenterCrop``. OpenCV's ``INTER_CUBIC`` does not antialias when shrinking, so it drifts from
the reference on large photos. :mod:`edgeclass.media.resample` reproduces PIL's separable
resampling exactly (same weights, same horizontal-then-vertical order with 8-bit rounding in
between), computing only the output pixels that survive the centre crop.

Normalisation (mean/std, u8 -> f32, NHWC -> NCHW) and the BGR -> RGB swap live inside the IR
(OpenVINO PrePostProcessor), so this module hands the model the cropped ``uint8`` image in
OpenCV's own BGR order. Model folders written before the swap moved into the graph take RGB;
:func:`to_input_order` is the one place that converts, and only for those.
"""

from __future__ import annotations

import math

import numpy as np

from edgeclass.modelfiles.preprocessing import CHANNEL_ORDERS, INTERPOLATIONS, PreprocessConfig  # noqa: F401 - re-exported


def to_input_order(image_bgr: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """A BGR ``uint8`` crop (what OpenCV decodes) in the channel order the IR takes.

    New IRs take BGR: no copy. IRs from folders written before the swap moved into the graph
    take RGB: reversed here, on the small crop rather than the full decoded image.
    """
    if config.input_channel_order == "BGR":
        return image_bgr
    return np.ascontiguousarray(image_bgr[..., ::-1])


def resized_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """torchvision's ``Resize(int)`` output size: shorter side = ``shorter``, long side truncated."""
    if width <= height:
        return int(shorter * height / width), shorter
    return shorter, int(shorter * width / height)


def center_crop_offsets(height: int, width: int, crop_h: int, crop_w: int) -> tuple[int, int]:
    """torchvision's ``center_crop`` offsets (Python's round: half to even)."""
    return int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))


def resize_and_crop(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Resize the shorter side to ``config.resize_shorter`` and centre-crop ``config.input_size``.

    ``image`` is an ``HxWx3`` ``uint8`` array; returns a contiguous ``uint8`` array of shape
    ``(crop_h, crop_w, 3)`` in the same channel order, equal to PIL's resize + torchvision's
    centre crop (:mod:`edgeclass.media.resample`: PIL's integer weights, exact arithmetic).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {image.shape} {image.dtype}")
    from edgeclass.media.resample import resample_crop  # imports cv2: after OpenCV's pixel limit is set

    in_h, in_w = image.shape[:2]
    out_h, out_w = resized_size(in_h, in_w, config.resize_shorter)
    crop_h, crop_w = config.input_size
    top, left = center_crop_offsets(out_h, out_w, crop_h, crop_w)
    return resample_crop(image, out_h, out_w, top, left, crop_h, crop_w, config.interpolation)


def reduction_factor(height: int, width: int, config: PreprocessConfig) -> int:
    """Largest JPEG DCT scale (1, 2, 4, 8) that keeps the short side >= the resize target."""
    short = min(height, width)
    for factor in (8, 4, 2):
        if math.ceil(short / factor) >= config.resize_shorter:
            return factor
    return 1
