"""The ``edgeclass`` command: parses options, calls the library, renders. No work happens here.

One module per stage of the product: :mod:`.models` (convert, quantize, info), :mod:`.running`
(run, bench), :mod:`.training` (train); :mod:`.app` holds the Typer app and shared helpers.
"""

from __future__ import annotations

import os
import sys

from edgeclass.cli import models, running, training, updates  # noqa: F401 - importing registers the commands
from edgeclass.cli.app import app


# NumPy's BLAS in one thread, unless the user chose a count: read by OpenBLAS once, when NumPy is
# first imported, so set here, before any command imports it (a program importing edgeclass as a
# library keeps its own setting). edgeclass's parallelism is OpenVINO's and its decode threads; its
# NumPy products are kept small enough for one thread (media/resample.py). A pool of OpenBLAS
# threads only costs its start-up at every (cron) start: 0.2 of the 1.0 CPU-seconds of a `run` of
# a few images (docs/benchmarks.md#start-up).
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def one_blas_thread(environ: os._Environ[str] | dict[str, str] = os.environ) -> None:
    if not any(environ.get(name) for name in _BLAS_THREADS):
        environ["OPENBLAS_NUM_THREADS"] = "1"


def entrypoint() -> None:  # console script
    one_blas_thread()
    app()


if __name__ == "__main__":
    one_blas_thread()
    sys.exit(app())
