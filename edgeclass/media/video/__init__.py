"""Video files and live sources (RTSP, HTTP MJPEG/HLS, cameras) as work items for the pipeline.

``reader``: the one reader abstraction (PyAV for files and streams, OpenCV for cameras);
``files``: sampling plans for files (seek, sequential, key frames); ``live``: concurrent live
sources with per-source queues, watchdog, health and frozen-picture detection.
"""

from edgeclass.media.video.files import duration_ms, file_items, range_items
from edgeclass.media.video.live import LiveHub
from edgeclass.media.video.options import VideoOptions, mask_credentials

__all__ = ["LiveHub", "VideoOptions", "duration_ms", "file_items", "mask_credentials", "range_items"]
