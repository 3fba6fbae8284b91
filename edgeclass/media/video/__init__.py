"""Video files and live sources (RTSP, HTTP MJPEG/HLS, cameras) as work items for the pipeline.

``reader``: the one reader abstraction (PyAV for files and streams, OpenCV for cameras);
``files``: sampling plans for files (seek, sequential, key frames); ``keyseek``: key frames at
the cost of the samples (one key packet decoded per sample, two readers on long files);
``samples``: what a sample is and the arithmetic of sample times; ``live``: concurrent live
sources with per-source queues and a watchdog; ``health``: a live source's health and clock;
``picture``: frozen and blank pictures; ``options``: the settings and credential masking (no
video library imported).

The names below are imported from their modules on first use, so a run over images only (which
builds a :class:`VideoOptions`) does not import the video readers.
"""

from __future__ import annotations

import importlib

_HOMES = {"duration_ms": "files", "file_items": "files", "range_items": "files", "LiveHub": "live",
          "VideoOptions": "options", "mask_credentials": "options"}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
