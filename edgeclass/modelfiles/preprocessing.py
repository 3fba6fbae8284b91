"""What a model expects of its input (stored in the IR's rt_info, read back by every user of
the model): input size, crop, interpolation, normalisation, channel orders. The code that does
it is :mod:`edgeclass.media.preprocess`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, cast

INTERPOLATIONS = ("bicubic", "bilinear")  # the filters edgeclass.media.resample implements
CHANNEL_ORDERS = ("RGB", "BGR")


@dataclass(frozen=True)
class PreprocessConfig:
    """What the model expects; stored in the IR's rt_info and read back by ``run``."""

    input_size: tuple[int, int] = (256, 256)  # (height, width) fed to the network
    crop_pct: float = 0.888
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # in [0, 1] units, as timm
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: str = "RGB"  # what the network was trained on (timm: RGB)
    crop_mode: str = "center"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    # Channel order of the IR's input tensor. BGR (OpenCV's, Model API's): the swap to
    # ``channel_order`` is a step inside the graph. Folders written before this field existed
    # took ``channel_order`` directly (see from_dict).
    input_channel_order: str = "BGR"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.input_size[0] != self.input_size[1]:
            raise ValueError("only square input sizes are supported")
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct}")
        for name in ("channel_order", "input_channel_order"):
            if getattr(self, name) not in CHANNEL_ORDERS:
                raise ValueError(f"{name} must be one of {CHANNEL_ORDERS}, got {getattr(self, name)!r}")

    @property
    def swap_in_graph(self) -> bool:
        """True when the IR reverses the input channels itself (input order != network order)."""
        return self.input_channel_order != self.channel_order

    @property
    def resize_shorter(self) -> int:
        """Shorter-side length before the centre crop (timm: floor(size / crop_pct))."""
        return math.floor(self.input_size[0] / self.crop_pct)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        d["resize_shorter"] = self.resize_shorter
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        return cls(
            # the lengths are the file's promise (written by to_dict); cast: no check added here
            input_size=cast("tuple[int, int]", tuple(int(v) for v in d["input_size"])),
            crop_pct=float(d["crop_pct"]),
            interpolation=str(d["interpolation"]),
            mean=cast("tuple[float, float, float]", tuple(float(v) for v in d["mean"])),
            std=cast("tuple[float, float, float]", tuple(float(v) for v in d["std"])),
            channel_order=str(d.get("channel_order", "RGB")),
            crop_mode=str(d.get("crop_mode", "center")),
            # absent: written before the swap moved into the graph, when the IR took the network's order
            input_channel_order=str(d.get("input_channel_order", d.get("channel_order", "RGB"))),
        )
