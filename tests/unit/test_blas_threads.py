"""The command's NumPy runs its BLAS in one thread unless the user chose a count (edgeclass/cli/__init__.py):
OpenBLAS reads the count once, at NumPy's first import, so the command sets it before any import of
NumPy. Each case in a fresh interpreter without the user's variables."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_BLAS = ("import threadpoolctl\n"
         "print(sorted({p['num_threads'] for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas'}))\n")


def _python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**clean, **env})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def test_the_command_imports_no_numpy_before_it_sets_the_count_and_sets_it_first():
    code = ("import os, sys\n"
            "import edgeclass.cli\n"
            "assert 'numpy' not in sys.modules, 'the command imports NumPy before one_blas_thread can act'\n"
            "sys.argv = ['edgeclass', '--help']\n"
            "try:\n"
            "    edgeclass.cli.entrypoint()\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'))\n")
    assert _python(code) == "1"


@pytest.mark.parametrize("env, threads", [({}, "[1]"), ({"OPENBLAS_NUM_THREADS": "2"}, "[2]"), ({"OMP_NUM_THREADS": "2"}, "[2]")])
def test_one_blas_thread_unless_the_user_chose(env, threads):
    code = "from edgeclass.cli import one_blas_thread\none_blas_thread()\nimport numpy\n" + _BLAS
    assert _python(code, **env) == threads
