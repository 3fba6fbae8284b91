"""One reader for every kind of video: files, RTSP, HTTP (MJPEG, HLS) and cameras.

Files and network sources go through PyAV (FFmpeg's libraries): frames come out decoded but
not converted (YUV planes), so a frame that is not sampled costs its decode and nothing more;
key-frame-only decoding (``skip_frame``), seeking, per-source options (``rtsp_transport``) and
timeouts (FFmpeg's interrupt callback, no helper thread) are per container. Cameras
(``/dev/videoN`` or an index) go through OpenCV's V4L2 backend (``grab()`` without
``retrieve()`` for frames not sampled), since FFmpeg builds on PyPI carry no V4L2 device.

PyAV was chosen by measurement on a 1080p H.264 file, GOP 2 s (``benchmarks/video.py``
prints the comparison): the same full decode as OpenCV, key frames only ~9x cheaper (OpenCV
has no key-frame mode), seeking 2x faster.

Every failure is a :class:`ReadFailure` carrying the row status.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import numpy as np

from edgeclass.media.video.options import VideoOptions
from edgeclass.results import Status

MAX_BAD_PACKETS = 100  # undecodable packets in a row before a source is called broken


class ReadFailure(Exception):
    """A video or stream that cannot (or can no longer) be read; ``status`` is the row's status."""

    def __init__(self, status: Status, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Frame:
    """A decoded frame, converted to pixels only when asked (:meth:`pixels`)."""

    __slots__ = ("time_s", "key", "_av", "_cap", "_bgr", "_sws_threads")

    def __init__(self, time_s: float | None, key: bool, av_frame: Any = None, cap: Any = None,
                 sws_threads: int = 0) -> None:  # av_frame: an av.VideoFrame; cap: a cv2.VideoCapture
        self.time_s = time_s  # media time since the stream's start; None: no timestamps
        self.key = key
        self._av = av_frame
        self._cap = cap
        self._bgr: np.ndarray | None = None
        self._sws_threads = sws_threads  # swscale threads per conversion (0: one per CPU)

    @property
    def size(self) -> tuple[int, int] | None:
        """(height, width), when known without converting."""
        return (self._av.height, self._av.width) if self._av is not None else None

    def pixels(self, factor: int = 1) -> Callable[[], np.ndarray]:
        """A callable giving the ``HxWx3`` BGR ``uint8`` frame, shrunk ``factor`` times by area
        averaging during the colour conversion (swscale) when ``factor`` > 1. For decoded frames
        the conversion is deferred (it runs in the pipeline's worker threads); a camera frame is
        retrieved now, before the next grab overwrites it."""
        if self._av is not None:
            frame, threads = self._av, self._sws_threads
            if factor > 1:
                w, h = -(-frame.width // factor), -(-frame.height // factor)
                return lambda: frame.reformat(width=w, height=h, format="bgr24", interpolation="AREA",
                                              threads=threads).to_ndarray()
            return lambda: frame.to_ndarray(format="bgr24", threads=threads)
        bgr = self._retrieve()
        return lambda: bgr

    def luma_grid(self, step: int = 8) -> np.ndarray:
        """Brightness sampled every ``step`` pixels (no averaging: sensor noise stays visible),
        for frozen-picture detection. No colour conversion for decoded frames."""
        if self._av is not None:
            plane = self._av.planes[0]
            buf = np.frombuffer(plane, np.uint8)
            rows = buf[: buf.size // plane.line_size * plane.line_size].reshape(-1, plane.line_size)
            return rows[: plane.height : step, : plane.width : step].astype(np.int16)
        return self._retrieve()[::step, ::step, 1].astype(np.int16)

    def _retrieve(self) -> np.ndarray:
        if self._bgr is None:
            ok, bgr = self._cap.retrieve()
            if not ok or bgr is None:
                raise ReadFailure(Status.STREAM_ERROR, "camera frame could not be retrieved")
            self._bgr = bgr
        return self._bgr


def is_camera(target: str) -> bool:
    return target.isdigit() or target.startswith("/dev/video")


def open_reader(target: str, options: VideoOptions, live: bool) -> AvReader | CameraReader:
    """A reader for ``target`` (file path, URL or camera). Raises :class:`ReadFailure`."""
    if is_camera(target):
        return CameraReader(target)
    return AvReader(target, options, live)


class AvReader:
    """Files and network streams through PyAV."""

    def __init__(self, target: str, options: VideoOptions, live: bool):
        import av

        self._av = av
        self.path = target
        self.live = live
        self.last_packet = time.monotonic()  # read by the live watchdog (key-frame mode: few frames)
        self.options = options
        if not live:
            _check_regular_file(target)
        container_options = {}
        if target.lower().startswith(("rtsp://", "rtsps://")) and options.rtsp_tcp:
            container_options["rtsp_transport"] = "tcp"
        timeout = (options.open_timeout_s, options.read_timeout_s) if live else None
        try:
            self.container = av.open(target, container_options=container_options, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - every way an open fails becomes a status
            raise self._open_failure(exc) from None
        try:
            self.stream = self.container.streams.video[0]
        except IndexError:
            self.container.close()
            raise ReadFailure(Status.STREAM_ERROR if live else Status.CORRUPT, "no video stream") from None
        s = self.stream
        s.thread_type = "SLICE" if live or options.keyframes else "AUTO"  # frame threads: files only
        if options.decoder_threads:  # `run --threads N`: FFmpeg's threads within the same cap
            s.codec_context.thread_count = options.decoder_threads
        if options.keyframes:
            s.codec_context.skip_frame = "NONKEY"
        self.time_base = float(s.time_base) if s.time_base else None
        self.start_s = float(s.start_time * s.time_base) if s.start_time is not None and s.time_base else 0.0
        rate = s.average_rate or s.guessed_rate
        self.fps = float(rate) if rate else None
        self.duration_s: float | None
        if s.duration is not None and s.time_base:
            self.duration_s = float(s.duration * s.time_base)
        elif self.container.duration:
            self.duration_s = self.container.duration / 1_000_000
        else:
            self.duration_s = None

    def _open_failure(self, exc: Exception) -> ReadFailure:
        av = self._av
        o = self.options
        if isinstance(exc, getattr(av.error, "ExitError", ())):
            return ReadFailure(Status.TIMEOUT, f"no answer within {o.open_timeout_s:g}s")
        if isinstance(exc, FileNotFoundError):
            return ReadFailure(Status.STREAM_ERROR if self.live else Status.MISSING, "not found")
        if isinstance(exc, PermissionError):
            return ReadFailure(Status.STREAM_ERROR if self.live else Status.UNREADABLE, "permission denied")
        if isinstance(exc, av.error.InvalidDataError) and not self.live:
            return ReadFailure(Status.CORRUPT, "not a readable video (unknown format, or cut before its index)")
        return ReadFailure(Status.STREAM_ERROR, f"cannot open: {_short(exc)}")

    def frames(self) -> Generator[Frame, None, None]:
        """Decoded frames from the current position on. Ends at the end of the media; raises
        :class:`ReadFailure` when the source times out or breaks."""
        av = self._av
        s, tb, start = self.stream, self.time_base, self.start_s
        bad = 0
        # under a --threads cap the pipeline's workers are the parallelism: one swscale thread each
        sws_threads = 1 if self.options.decoder_threads else 0
        try:
            for packet in self.container.demux(s):
                self.last_packet = time.monotonic()
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    if isinstance(exc, EOFError):
                        return
                    bad += 1
                    if bad > MAX_BAD_PACKETS:
                        status = Status.STREAM_ERROR if self.live else Status.CORRUPT
                        raise ReadFailure(status, f"undecodable data: {_short(exc)}") from None
                    continue
                bad = 0
                for f in decoded:
                    t = f.pts * tb - start if f.pts is not None and tb else None
                    yield Frame(t, f.key_frame, av_frame=f, sws_threads=sws_threads)
        except av.error.FFmpegError as exc:
            if isinstance(exc, getattr(av.error, "ExitError", ())):
                raise ReadFailure(Status.TIMEOUT, f"no data for {self.options.read_timeout_s:g}s") from None
            if isinstance(exc, EOFError):
                return
            if self.live:  # a connection that breaks after it worked: the stream dropped
                raise ReadFailure(Status.EOF, f"stream dropped ({_short(exc)})") from None
            if isinstance(exc, av.error.InvalidDataError):  # damaged data stays damaged: final
                raise ReadFailure(Status.CORRUPT, f"damaged: {_short(exc)}") from None
            raise ReadFailure(Status.STREAM_ERROR, f"read failed: {_short(exc)}") from None

    def seek(self, time_s: float) -> bool:
        """Position at the key frame at or before ``time_s`` (media time); False if impossible."""
        if not self.time_base:
            return False
        try:
            self.container.seek(int((time_s + self.start_s) / self.time_base), stream=self.stream, backward=True)
        except self._av.error.FFmpegError:
            return False
        return True

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> AvReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CameraReader:
    """A local camera through OpenCV (V4L2): every frame grabbed, only sampled ones retrieved."""

    live = True
    fps = None
    duration_s = None

    def __init__(self, target: str):
        import cv2

        self.cap = cv2.VideoCapture(int(target)) if target.isdigit() else cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not self.cap.isOpened():
            self.cap.release()
            raise ReadFailure(Status.STREAM_ERROR, "cannot open camera")

    def frames(self) -> Iterator[Frame]:
        while self.cap.grab():
            yield Frame(None, True, cap=self.cap)
        raise ReadFailure(Status.EOF, "camera stopped delivering frames")

    def close(self) -> None:
        self.cap.release()

    def __enter__(self) -> CameraReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_regular_file(path: str) -> None:
    """A FIFO or device named like a video must not block the run; missing files get their status."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ReadFailure(Status.MISSING, "file not found") from None
    except OSError as exc:
        raise ReadFailure(Status.UNREADABLE, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise ReadFailure(Status.UNREADABLE, "is a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file")
    if st.st_size == 0:
        raise ReadFailure(Status.EMPTY, "file is empty (0 bytes)")


def _short(exc: Exception) -> str:
    """The reason without the URL (it may carry credentials)."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return text.splitlines()[-1][:200]


def estimate_gop(path: str, max_packets: int = 600, window_s: float = 12.0) -> float | None:
    """Seconds between key frames near the start of a file, from packet flags (demux only, no
    decoding). None when unknown; ``window_s`` or more when no second key frame was seen."""
    import av

    try:
        with av.open(path) as container:
            s = container.streams.video[0]
            if not s.time_base:
                return None
            keys: list[float] = []
            last = None
            for n, packet in enumerate(container.demux(s)):
                if packet.pts is None:
                    continue
                last = float(packet.pts * s.time_base)
                if packet.is_keyframe:
                    keys.append(last)
                    if len(keys) >= 4:
                        break
                if n >= max_packets or (keys and last - keys[0] > window_s):
                    break
    except (av.error.FFmpegError, IndexError):
        return None
    if len(keys) >= 2:
        return max(b - a for a, b in zip(keys, keys[1:]))
    if keys and last is not None:
        return max(last - keys[0], window_s)
    return None
