"""The compiled pass's loading and guards (its results: tests/unit/test_resample.py, on both paths)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeclass.media import resample_native
from edgeclass.media.resample import axis_plan


def test_the_compiled_pass_is_built_where_a_compiler_is():
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler here: the NumPy path serves")
    assert resample_native.kernel() is not None, "a C compiler is here but _resample.c was not built: pip install -e . again"


def test_environment_switches_to_the_numpy_path(monkeypatch):
    monkeypatch.setenv("EDGECLASS_RESAMPLER", "numpy")
    resample_native.kernel.cache_clear()
    try:
        assert resample_native.kernel() is None
    finally:
        monkeypatch.delenv("EDGECLASS_RESAMPLER")
        resample_native.kernel.cache_clear()


def test_the_compiled_pass_refuses_lines_its_plan_does_not_fit():
    if not resample_native.available():
        pytest.skip("edgeclass/media/_resample.c was not built (no C compiler at install)")
    plan = axis_plan(540, 288, 16, 256, "bicubic").along
    needed = int(plan.first[-1] + plan.taps[-1])  # the last output reads the furthest
    resample_native.resample_lines(np.zeros((needed, 30), np.uint8), plan.first, plan.taps, plan.coeffs)
    lines = np.zeros((needed - 1, 30), np.uint8)  # one line short: would read past the end
    with pytest.raises(ValueError, match="do not match"):
        resample_native.resample_lines(lines, plan.first, plan.taps, plan.coeffs)
