"""The metrics file's format (in process)."""

from __future__ import annotations

import time


def test_source_labels_are_escaped():
    """A source name with a quote, a backslash and a newline survives the text format."""
    from edgeclass.media.video.health import SourceHealth
    from edgeclass.run.metrics import RunMetrics, render
    from prometheus_client.parser import text_string_to_metric_families

    name = 'rtsp://cam/"a"\\b\nc'
    health = SourceHealth(frames_read=7, reconnects=2)
    health.down_since = None
    text = render(RunMetrics(started=1.0, duration_s=2.0, rows={"ok": 3},
                             health={name: health.to_dict(time.monotonic())}), last_success=0.0)
    samples = {(s.name, s.labels.get("source")): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("edgeclass_source_frames_read_total", name)] == 7
    assert samples[("edgeclass_source_reconnects_total", name)] == 2
    assert samples[("edgeclass_source_up", name)] == 1
    assert samples[("edgeclass_images_per_second", None)] == 1.5
