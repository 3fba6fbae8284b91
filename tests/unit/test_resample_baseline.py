"""The compiled resampler's baseline build: what a box without AVX (SSE4-only Celeron/Pentium J
and N) runs. target_clones picks it by the CPU's own flags, which no environment variable can
lower, so the test builds the same source for the baseline target alone (the flags the `default`
clone is compiled with), checks it holds no AVX instruction, and that it gives the same bytes as
the build this box dispatches to."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from edgeclass.media import resample_native

SOURCE = resample_native.__file__.replace("resample_native.py", "_resample.c")


def _load(path):
    function = ctypes.CDLL(str(path)).ec_resample_lines
    size, pointer = ctypes.c_ssize_t, ctypes.c_void_p
    function.argtypes = (pointer, size, size, pointer, size, size, pointer, pointer, pointer, size, size)
    function.restype = None
    return function


def _call(function, lines, first, taps, coeffs, step):
    out = np.empty((coeffs.shape[0], lines.shape[1]), dtype=np.uint8)
    function(lines.ctypes.data, lines.strides[0], lines.shape[1], out.ctypes.data, out.strides[0], coeffs.shape[0],
             first.ctypes.data, taps.ctypes.data, coeffs.ctypes.data, coeffs.strides[0] // 4, step * lines.strides[0])
    return out


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    if not shutil.which("gcc") or not shutil.which("objdump"):
        pytest.skip("needs gcc and objdump (scripts/install-test-system-deps.sh installs them)")
    out = tmp_path_factory.mktemp("baseline") / "resample_baseline.so"
    subprocess.run(["gcc", "-O3", "-fno-strict-aliasing", "-march=x86-64", "-DEC_SINGLE_BUILD", "-shared", "-fPIC",
                    SOURCE, "-o", str(out)], check=True)
    return out


def test_the_baseline_build_uses_no_avx(baseline):
    code = subprocess.run(["objdump", "-d", str(baseline)], capture_output=True, text=True, check=True).stdout
    assert "ec_resample_lines" in code
    assert "%ymm" not in code and "%zmm" not in code and "vpmaddubsw" not in code


def test_the_baseline_build_gives_the_dispatched_builds_bytes(baseline):
    if not resample_native.available():
        pytest.skip("the compiled resampler was not built by this install")
    rng = np.random.default_rng(7)
    base, dispatched = _load(baseline), resample_native.kernel()
    for _ in range(50):
        n, length, count = int(rng.integers(4, 40)), int(rng.integers(1, 5000)), int(rng.integers(1, 30))
        step = int(rng.integers(1, 4))
        lines = rng.integers(0, 256, (n * step, length), dtype=np.uint8)
        taps = rng.integers(1, min(n, 9) + 1, count).astype(np.int32)
        first = np.sort(rng.integers(0, n - taps.max() + 1, count)).astype(np.int32) * step
        coeffs = rng.integers(-(1 << 20), 1 << 21, (count, int(taps.max()))).astype(np.int32)
        expected = _call(dispatched, lines, first, taps, coeffs, step)
        assert np.array_equal(_call(base, lines, first, taps, coeffs, step), expected)
