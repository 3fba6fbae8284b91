#!/usr/bin/python3
"""A real RTSP server on 127.0.0.1 for the tests: GStreamer's gst-rtsp-server (Debian packages).

Run with Debian's /usr/bin/python3 (python3-gi): ``rtsp_server.py PORT [PATTERN]`` serves a live
H.264 test pattern (videotestsrc's ``pattern``: ball by default, black for a covered camera) at
rtsp://127.0.0.1:PORT/test and prints "ready" once listening.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(sys.argv[1])
pattern = sys.argv[2] if len(sys.argv) > 2 else "ball"
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=320,height=240,framerate=10/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/test", factory)
if server.attach(None) == 0:
    sys.exit("could not listen")
print("ready", flush=True)
GLib.MainLoop().run()
