"""Video files and live sources (RTSP, HTTP MJPEG/HLS, cameras) as work items for the pipeline.

``reader``: the one reader abstraction (PyAV for files and streams, OpenCV for cameras);
``files``: sampling plans for files (seek, sequential, key frames); ``keyseek``: key frames at
the cost of the samples (one key packet decoded per sample, two readers on long files);
``samples``: what a sample is and the arithmetic of sample times; ``live``: concurrent live
sources with per-source queues and a watchdog; ``health``: a live source's health and clock;
``picture``: frozen and blank pictures; ``options``: the settings and credential masking (no
video library imported).

``VideoOptions`` and ``mask_credentials`` are imported with the package (``options`` imports
no video library). The readers' names (``files``, ``live``: about 10 ms of imports) are imported
on first use, so a run over images only (which builds a :class:`VideoOptions`) does not import
them; a type checker sees them through the ``TYPE_CHECKING`` imports, with their real types.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from edgeclass.media.video.options import VideoOptions, mask_credentials

if TYPE_CHECKING:
    from edgeclass.media.video.files import duration_ms, file_items, range_items
    from edgeclass.media.video.live import LiveHub

_LAZY = {"duration_ms": "files", "file_items": "files", "range_items": "files", "LiveHub": "live"}

__all__ = ["LiveHub", "VideoOptions", "duration_ms", "file_items", "mask_credentials", "range_items"]


def __getattr__(name: str) -> object:
    """The lazy names above from their modules (PEP 562); any other name is an AttributeError."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
