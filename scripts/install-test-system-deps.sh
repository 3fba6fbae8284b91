#!/usr/bin/env bash
# Debian packages the video and live-stream tests need: ffmpeg (x264 test videos, HLS
# playlists), GStreamer's RTSP server (gst-rtsp-server via
# PyGObject, run with Debian's /usr/bin/python3) and the x264 encoder. Installs only what is
# missing; needs root (or sudo). Tests that need them skip with a reason when absent.
set -euo pipefail
PKGS="ffmpeg gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-tools"
# headless Chromium: tests/test_train.py renders report.html in a real browser (--dump-dom, --screenshot)
PKGS="$PKGS chromium"
# a C compiler: pip install builds edgeclass/media/_resample.c (the tests check it was built)
PKGS="$PKGS gcc libc6-dev"
# mosquitto: tests/test_publish.py starts a real MQTT broker on 127.0.0.1 (benchmarks/publish.py too)
PKGS="$PKGS mosquitto"
# jpegtran: tests/test_hostile.py makes an arithmetic-coded JPEG (scripts/make_hostile_corpus.py)
PKGS="$PKGS libjpeg-turbo-progs"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v apt-get >/dev/null; then
    echo "install-test-system-deps: no apt-get; RTSP tests will be skipped (missing:$missing)" >&2
    exit 0
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
