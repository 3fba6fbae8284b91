"""Live test sources on 127.0.0.1: a GStreamer RTSP server process, an MJPEG-over-HTTP server
thread, and a TCP port that accepts connections but never answers."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
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
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/test"

    def start(self, timeout: float = 20) -> RtspServer:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), str(self.port)], stdout=subprocess.PIPE,
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
def mjpeg_server(fps: float = 10.0, frames: int = 1000):
    """multipart/x-mixed-replace MJPEG over HTTP, as IP cameras serve it."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            try:
                for i in range(frames):
                    data = mjpeg_frame(i)
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                    self.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                    time.sleep(1.0 / fps)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
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
