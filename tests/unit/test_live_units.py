"""Live-source pieces in process: credentials masking, the live clock, the frozen detector."""

from __future__ import annotations

import numpy as np
import pytest
from edgeclass.media.video import mask_credentials


def test_mask_credentials():
    assert mask_credentials("rtsp://admin:hunter2@10.0.0.5:554/s1") == "rtsp://admin:***@10.0.0.5:554/s1"
    assert mask_credentials("http://token@cam/x.mjpg") == "http://***@cam/x.mjpg"
    assert mask_credentials("rtsp://cam/x") == "rtsp://cam/x"


def test_live_clock_follows_stream_spacing_but_never_runs_ahead():
    from edgeclass.media.video.health import LiveClock

    clock = LiveClock()
    t0 = clock.opened
    # a burst on connect: 3 s of buffered frames arrive within 0.1 s -> pinned to the clock
    burst = [clock.ms(i * 0.1, t0 + 0.5 + i * 0.003) for i in range(30)]
    assert burst[0] == pytest.approx(500) and max(burst) <= 500 + 30 * 3 + 1e-6
    # then frames in real time: the stream's own 100 ms spacing, even when they arrive in clumps
    later = [clock.ms(3.0 + i * 0.1, t0 + 1.6 + (i // 10) * 1.0) for i in range(20)]
    assert [round(b - a, 6) for a, b in zip(later, later[1:])] == [100.0] * 19
    assert all(t <= (1.6 + (i // 10)) * 1000 + 1e-6 for i, t in enumerate(later))
    # timestamps that jump back (a reconnect, an RTCP resync) never make time go backwards
    assert clock.ms(0.0, t0 + 3.7) >= later[-1]


def test_frozen_detector_needs_the_same_picture_for_the_whole_delay():
    from edgeclass.media.video.picture import FrozenDetector

    rng = np.random.default_rng(0)
    scene = rng.integers(0, 200, (30, 40)).astype(np.int16)
    noisy = FrozenDetector(after_s=2.0)  # a static scene with sensor noise is not frozen
    assert [noisy.update(scene + rng.integers(-3, 4, scene.shape), t * 0.5) for t in range(20)] == [None] * 20
    frozen = FrozenDetector(after_s=2.0)
    events = [frozen.update(scene, t * 0.5) for t in range(8)] + [frozen.update(scene + 40, 4.0)]
    assert events == [None, None, None, None, "frozen", None, None, None, "recovered"]
    assert FrozenDetector(after_s=0).update(scene, 0) is None and FrozenDetector(after_s=0).update(scene, 99) is None
