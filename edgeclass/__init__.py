"""edgeclass: MobileViTv2 image classification on CPU-only edge boxes with OpenVINO."""

__version__ = "0.1.0"
