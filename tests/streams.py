"""Test media and live test sources on 127.0.0.1.

* Videos encoded with x264 through FFmpeg's libraries (PyAV): frames carrying their own index as
  a barcode (so the frame a reader returns can be identified exactly, also after seeking), and
  videos made of class images (so rows can be checked label by label).
* Live sources: a GStreamer RTSP server process, MJPEG-over-HTTP servers (normal, flooding,
  dying, frozen), a live HLS server (FFmpeg-written segments, a playlist that grows with the
  clock), and a TCP port that accepts connections but never answers."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

SERVER = Path(__file__).parent / "servers" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rtsp_available() -> str | None:
    """None when the RTSP server can run here, else why not."""
    if not os.path.exists(SYSTEM_PYTHON):
        return "no /usr/bin/python3"
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0');"
                        "from gi.repository import GstRtspServer"], capture_output=True, text=True)
    if r.returncode != 0:
        return "GStreamer RTSP server packages missing (scripts/install-test-system-deps.sh)"
    if shutil.which("gst-inspect-1.0"):
        r = subprocess.run(["gst-inspect-1.0", "x264enc"], capture_output=True)
        if r.returncode != 0:
            return "x264enc missing (gstreamer1.0-plugins-ugly)"
    return None


class RtspServer:
    """GStreamer's RTSP server in its own process: videotestsrc ``pattern`` (``ball``: a moving
    picture; ``black``: a covered camera) as H.264 at 10 fps, 320x240."""

    def __init__(self, port: int | None = None, pattern: str = "ball"):
        self.port = port or free_port()
        self.pattern = pattern
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/test"

    def start(self, timeout: float = 20) -> RtspServer:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), str(self.port), self.pattern], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"RTSP server did not start: {self.proc.stderr.read()}")
        # wait until the stream actually plays (first client builds the pipeline)
        while time.monotonic() < deadline:
            cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000,
                                                              cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
            ok = cap.isOpened() and cap.read()[0]
            cap.release()
            if ok:
                return self
            time.sleep(0.2)
        raise RuntimeError("RTSP stream never played")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def mjpeg_frame(i: int) -> bytes:
    img = np.zeros((120, 160, 3), np.uint8)
    img[:] = (i * 13 % 255, 80, 160)
    cv2.circle(img, (80, 60), 30, (255, 255, 255), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


@contextlib.contextmanager
def mjpeg_server(fps: float | None = 10.0, frames: int = 1000, frame_at: Callable[[int], bytes] = mjpeg_frame,
                 connections: int | None = None):
    """multipart/x-mixed-replace MJPEG over HTTP, as IP cameras serve it. ``fps=None`` floods
    (as fast as the socket takes them); after ``frames`` frames the connection closes; after
    ``connections`` connections the server answers 503 (a camera that died)."""
    served = [0]

    class Handler(_QuietHandler):
        def do_GET(self):  # noqa: N802
            served[0] += 1
            if connections is not None and served[0] > connections:
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for i in range(frames):
                data = frame_at(i)
                if not self.send(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                 + f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n"):
                    return
                if fps:
                    time.sleep(1.0 / fps)

    with _serving(Handler) as port:
        yield f"http://127.0.0.1:{port}/stream.mjpg"


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    """A test server's handler: no access log; a client that hangs up ends the response."""

    def send(self, data: bytes) -> bool:
        """Write and flush ``data``; False when the client has gone."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serving(handler):
    """A threaded HTTP server on 127.0.0.1 (a free port) for the block; yields the port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_port():
    """A listening TCP port that never accepts or answers: a camera that hangs on connect."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


# ----------------------------------------------------------------------------- generated videos
BITS = 10  # barcode bits: frame indices up to 1023


def coded_frame(i: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A BGR frame whose top half is frame index ``i`` as a black/white barcode (survives x264)."""
    w, h = size
    img = np.full((h, w, 3), 90, np.uint8)
    bar = w // BITS
    for b in range(BITS):
        if (i >> b) & 1:
            img[: h // 2, b * bar:(b + 1) * bar] = 255
        else:
            img[: h // 2, b * bar:(b + 1) * bar] = 0
    img[h // 2:, :, 1] = (i * 7) % 256  # and a colour that moves
    return img


def read_code(bgr: np.ndarray) -> int:
    """The frame index a :func:`coded_frame` carries (from a decoded frame at full size)."""
    h, w = bgr.shape[:2]
    bar = w // BITS
    top = bgr[h // 8: 3 * h // 8].mean(axis=2)
    return sum(1 << b for b in range(BITS) if top[:, b * bar + bar // 4: (b + 1) * bar - bar // 4].mean() > 128)


def encode_video(path: Path, frames, fps: int = 25, gop: int = 50, bframes: int = 2, fmt: str | None = None,
                 options: dict | None = None) -> Path:
    """Encode BGR frames with x264 (FFmpeg's libraries through PyAV): a fixed GOP (no scene-cut
    key frames), B-frames, yuv420p: what cameras and recorders write."""
    import av

    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = None
        for bgr in frames:
            if stream is None:
                stream = out.add_stream("libx264", rate=fps)
                stream.width, stream.height = bgr.shape[1], bgr.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": str(bframes),
                                  "crf": "12", "preset": "veryfast"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def coded_video(path: Path, n: int, fps: int = 25, gop: int = 50) -> Path:
    return encode_video(path, (coded_frame(i) for i in range(n)), fps, gop)


# ----------------------------------------------------------------------------- live HLS
@contextlib.contextmanager
def live_hls_server(folder: Path, window: int = 6, start_segments: int = 3):
    """Serve FFmpeg-written HLS segments in ``folder`` (``index.m3u8`` + ``.ts``) as a *live*
    stream: the playlist grows by one segment per segment duration of wall time (a sliding
    window, no end marker until the last segment), as cameras and encoders publish it."""
    lines = (folder / "index.m3u8").read_text().splitlines()
    segments = []  # (duration, name)
    for i, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            segments.append((float(line[8:].split(",")[0]), lines[i + 1].strip()))
    target = max(1, round(max(d for d, _ in segments)))
    t0 = time.monotonic()

    def playlist() -> bytes:
        elapsed = time.monotonic() - t0
        k, acc = start_segments, 0.0
        while k < len(segments) and acc + segments[k][0] <= elapsed:  # one more per segment of wall time
            acc += segments[k][0]
            k += 1
        first = max(0, k - window)
        out = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
        for d, name in segments[first:k]:
            out += [f"#EXTINF:{d:.6f},", name]
        if k == len(segments):
            out.append("#EXT-X-ENDLIST")
        return ("\n".join(out) + "\n").encode()

    class Handler(_QuietHandler):
        def do_GET(self):  # noqa: N802
            name = self.path.rsplit("/", 1)[-1]
            if name.endswith(".m3u8"):
                body, ctype = playlist(), "application/vnd.apple.mpegurl"
            elif (folder / name).is_file() and name.endswith(".ts"):
                body, ctype = (folder / name).read_bytes(), "video/mp2t"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.send(body)

    with _serving(Handler) as port:
        yield f"http://127.0.0.1:{port}/live/index.m3u8"


def write_hls(folder: Path, frames, fps: int = 10, segment_s: int = 1) -> Path:
    """HLS segments + a VOD playlist written by FFmpeg's HLS muxer (x264, one GOP per segment)."""
    folder.mkdir(parents=True, exist_ok=True)
    return encode_video(folder / "index.m3u8", frames, fps, gop=fps * segment_s, bframes=0, fmt="hls",
                        options={"hls_time": str(segment_s), "hls_list_size": "0", "hls_playlist_type": "vod",
                                 "hls_segment_filename": str(folder / "seg%03d.ts")})
