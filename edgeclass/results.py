"""Types shared by the stages: work items (made by media readers), results (made by the
pipeline, written by the output writers, counted in summaries)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """The CSV ``status`` column. Anything but ``ok`` counts as a failed input."""

    OK = "ok"
    MISSING = "missing"  # vanished between listing and reading, or a broken symlink
    UNREADABLE = "unreadable"  # permissions, symlink loop, not a regular file, I/O error
    EMPTY = "empty"  # zero bytes
    CORRUPT = "corrupt"  # not an image, truncated, undecodable
    UNSUPPORTED = "unsupported"  # a real image in a format OpenCV cannot decode (HEIC/HEIF, AVIF)
    TOO_LARGE = "too_large"  # over --max-pixels (decompression bomb) or the byte limit
    STREAM_ERROR = "stream_error"  # a video/stream could not be opened or broke
    TIMEOUT = "timeout"  # a live source did not answer in time
    EOF = "eof"  # a live stream ended and did not come back
    FROZEN = "frozen"  # a live source repeated the same picture for --frozen-after seconds
    BLANK = "blank"  # a live source's picture stayed nearly uniform (covered, black) for --blank-after seconds
    ERROR = "error"  # unexpected failure while classifying this input

    def __str__(self) -> str:  # csv module writes str(value)
        return self.value


@dataclass(frozen=True)
class Prediction:
    class_id: int
    label: str
    score: float


@dataclass(frozen=True)
class Result:
    """One CSV row: an image, or one sampled frame of a video or stream."""

    source: str
    status: Status
    error: str = ""
    predictions: tuple[Prediction, ...] = ()
    frame: int | None = None
    timestamp_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


@dataclass
class RunCounts:
    """Counts by status, for summaries and exit codes."""

    by_status: dict[str, int] = field(default_factory=dict)
    skipped_resume: int = 0
    kept_other_models: int = 0  # --resume: inputs whose rows came from another model, kept as they are

    def add(self, result: Result) -> None:
        key = result.status.value
        self.by_status[key] = self.by_status.get(key, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def ok(self) -> int:
        return self.by_status.get(Status.OK.value, 0)

    @property
    def failed(self) -> int:
        return self.total - self.ok


@dataclass(frozen=True)
class WorkItem:
    """Something to classify: ``load()`` returns the model input or raises ImageReadError."""

    source: str
    load: Callable[[], Any]  # -> numpy uint8 HxWx3
    frame: int | None = None
    timestamp_ms: float | None = None
    tag: Any = None  # opaque, handed back with the result (resume bookkeeping)


# top1_label of a prediction whose score is below `run --min-score` (the threshold `edgeclass
# train` stores in the IR); `edgeclass train` refuses a class of this name
UNKNOWN_LABEL = "unknown"
