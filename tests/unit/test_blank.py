"""The blank-picture measure and detector (in process)."""

from __future__ import annotations

import io
from pathlib import Path
import cv2
import numpy as np


def _osd(bgr: np.ndarray, colour=(255, 255, 255)) -> np.ndarray:
    """A camera's on-screen clock and name, burnt into the picture."""
    out = bgr.copy()
    cv2.putText(out, "2025-11-30 Sun 05:21:07", (24, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.2, colour, 2, cv2.LINE_AA)
    cv2.putText(out, "Camera 03 Loading bay", (860, 690), cv2.FONT_HERSHEY_SIMPLEX, 1.0, colour, 2, cv2.LINE_AA)
    return out


def _photos() -> dict[str, np.ndarray]:
    """Real photographs shipped with scikit-learn (a dependency of NNCF), as 1280x720 frames."""
    import sklearn.datasets

    root = Path(sklearn.datasets.__file__).parent / "images"
    return {name: cv2.resize(cv2.imread(str(root / name)), (1280, 720), interpolation=cv2.INTER_AREA)
            for name in ("china.jpg", "flower.jpg")}


def _luma_grid(bgr: np.ndarray) -> np.ndarray:
    """The point-sampled brightness the live reader measures, after an H.264 round trip."""
    import av

    from edgeclass.media.video.reader import Frame

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = bgr.shape[1], bgr.shape[0], "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for packet in stream.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        frame = next(container.decode(video=0))
        return Frame(None, True, av_frame=frame).luma_grid()


def test_blank_measure_on_real_footage_characteristics():
    """Covered, black and white-out pictures (sensor noise of a few grey levels, an on-screen
    clock) are blank; real photographs are not, also darkened to night levels with gain noise
    or washed out by dense fog; nor is the test pattern's small ball on black."""
    from edgeclass.media.video.picture import BLANK_SPREAD, luma_spread

    rng = np.random.default_rng(0)

    def noisy(bgr, sigma):
        return np.clip(bgr + rng.normal(0, sigma, bgr.shape[:2])[..., None], 0, 255).astype(np.uint8)

    flat = np.full((720, 1280, 3), 22.0)
    blank = {"covered, noise 1": _osd(noisy(flat, 1)), "covered, noise 4": _osd(noisy(flat, 4)),
             "black": np.zeros((720, 1280, 3), np.uint8),
             "white-out": _osd(noisy(np.full((720, 1280, 3), 250.0), 2), (0, 0, 0))}
    ball = np.zeros((720, 1280, 3), np.uint8)
    cv2.circle(ball, (500, 300), 80, (255, 255, 255), -1)  # 1.6 % of the picture, as videotestsrc's
    seen = {"ball": ball}
    for name, photo in _photos().items():
        seen[name] = photo
        seen[f"{name} at night"] = noisy(photo * 0.35, 6)
        seen[f"{name} in fog"] = (0.3 * photo + 0.7 * 190).astype(np.uint8)
    spreads = {name: luma_spread(_luma_grid(bgr)) for name, bgr in {**blank, **seen}.items()}
    assert all(spreads[name] < BLANK_SPREAD for name in blank), spreads
    assert all(spreads[name] >= 2 * BLANK_SPREAD for name in seen), spreads


def test_blank_detector_episodes():
    from edgeclass.media.video.picture import BlankDetector

    rng = np.random.default_rng(1)
    covered = lambda: rng.integers(18, 26, (30, 40)).astype(np.int16)  # noqa: E731
    scene = rng.integers(0, 200, (30, 40)).astype(np.int16)
    d = BlankDetector(after_s=2.0)
    events = [d.update(covered(), t * 0.5) for t in range(7)] + [d.update(scene, 3.5), d.update(covered(), 4.0)]
    assert events == [None, None, None, None, "blank", None, None, "recovered", None]
    assert d.since == 4.0 and not d.blank  # a new run of uniform pictures starts its own delay
    assert BlankDetector(after_s=0).update(covered(), 0) is None
