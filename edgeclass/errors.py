"""Specific exceptions, each carrying the process exit code the CLI maps it to, and the one
table of exit codes (``EXIT_CODES``): the CLI's help epilog and docs/ are made from it."""

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
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success (every input classified; compare kept NEW)"),
    (EXIT_INPUT_FAILURES, "some inputs failed (more than --max-failures), or a live source was down, frozen or blank at the end"),
    (EXIT_USAGE, "usage error (bad option, no inputs, bad labels file)"),
    (EXIT_MODEL, "model error (model folder missing or invalid, weights unavailable)"),
    (EXIT_CALIBRATION, "calibration / quantization error"),
    (EXIT_ACCURACY_GATE, "accuracy gate: INT8 refused (not made the default), compare refused NEW, promote refused"),
    (EXIT_OUTPUT, "output error (unwritable output, disk full)"),
    (EXIT_LOCKED, "another run holds the lock on this output"),
    (EXIT_MAX_RUNTIME, "stopped by --max-runtime"),
    (EXIT_SIGINT, "interrupted by SIGINT"),
    (EXIT_SIGTERM, "stopped by SIGTERM"),
)


def exit_codes_help() -> str:
    """The exit-code table as one paragraph (the CLI's help epilog)."""
    return "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES) + "."


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
