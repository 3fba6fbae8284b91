"""Options shared by video files and live sources, and credential masking for rows and logs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class VideoOptions:
    every_s: float | None = 1.0  # sample one frame per this many seconds of media time
    every_frame: int | None = None  # or one frame every N frames (files; overrides every_s)
    keyframes: bool = False  # decode and classify key frames only (archive triage, cheap cameras)
    max_frames: int | None = None  # per live source: frame rows written
    duration_s: float | None = None  # per live source
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    rtsp_tcp: bool = False
    reconnects: int = 5  # attempts after a drop before giving up on a live source
    backoff_s: float = 1.0  # first reconnect delay; doubles up to backoff_max_s
    backoff_max_s: float = 30.0
    queue_size: int = 4  # sampled frames waiting for inference, per live source
    frozen_after_s: float = 60.0  # same picture this long on a live source: a `frozen` row (0: off)
    blank_after_s: float = 60.0  # nearly uniform picture this long on a live source: a `blank` row (0: off)
    reduced: bool = True  # large frames converted at 1/2, 1/4, 1/8 scale (area) before the resampler (--full-decode: full size)
    decoder_threads: int = 0  # FFmpeg decoder threads per video (0: FFmpeg's default, one per CPU); `run --threads`
    #                           also makes each colour conversion single-threaded (the workers are the parallelism)

    def __post_init__(self) -> None:
        if self.keyframes and self.every_frame:
            raise ValueError("--keyframes samples by time (--every), not by frame count (--every-frame)")

    @property
    def interval_s(self) -> float:
        return self.every_s or 1.0


def mask_credentials(url: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://user:***@host/x`` (for CSV rows and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password is not None else f"***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
