"""Result columns: the reversible text form of file names (in process)."""

from __future__ import annotations

from edgeclass.run.output.columns import escape_source, source_to_path


def test_escape_is_reversible():
    names = ["plain.jpg", "caf\udce9.jpg", "back\\slash\\x41.jpg", "tab\there", "new\nline", "ünïcode.jpg"]
    for name in names:
        text = escape_source(name)
        text.encode("utf-8")  # always valid UTF-8
        assert source_to_path(text) == name
        assert source_to_path(escape_source(name, controls=True)) == name
        assert "\n" not in escape_source(name, controls=True)
    assert escape_source("ünïcode.jpg") == "ünïcode.jpg" and escape_source("caf\udce9.jpg") == "caf\\xe9.jpg"
