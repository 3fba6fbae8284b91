"""Specific exceptions, each carrying the process exit code the CLI maps it to.

Exit codes (also listed in the README and ``edgeclass run --help``):

==== ==========================================================
0    every input classified
1    some inputs failed (more than ``--max-failures``)
2    usage error (bad option, no inputs, bad labels file)
3    model error (model folder missing or invalid, weights unavailable)
4    calibration / quantization error
5    INT8 accuracy gate failed (the INT8 model was not made the default); ``compare``
     refused NEW; ``promote`` refused NEW after a refusing ``compare`` (no ``--force``)
6    output error (unwritable output, disk full)
7    another run holds the lock on this output
124  stopped by ``--max-runtime``
130  interrupted by SIGINT, 143 by SIGTERM (128 + signal number)
==== ==========================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INPUT_FAILURES = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_CALIBRATION = 4
EXIT_ACCURACY_GATE = 5
EXIT_OUTPUT = 6
EXIT_LOCKED = 7
EXIT_MAX_RUNTIME = 124


class EdgeclassError(Exception):
    """Base class: a failure the user can act on, with a one-line message."""

    exit_code = EXIT_USAGE


class UsageError(EdgeclassError):
    exit_code = EXIT_USAGE


class LabelsError(UsageError):
    """The labels file is unreadable or does not match the model's class count."""


class ModelError(EdgeclassError):
    exit_code = EXIT_MODEL


class ModelNotFoundError(ModelError):
    pass


class WeightsUnavailableError(ModelError):
    """Weights could not be obtained (offline and not cached, bad checkpoint)."""


class CalibrationError(EdgeclassError):
    exit_code = EXIT_CALIBRATION


class AccuracyGateError(EdgeclassError):
    exit_code = EXIT_ACCURACY_GATE


class OutputError(EdgeclassError):
    exit_code = EXIT_OUTPUT


class LockHeldError(EdgeclassError):
    exit_code = EXIT_LOCKED
