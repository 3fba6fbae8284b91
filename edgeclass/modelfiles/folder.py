"""Where models live on disk: one folder per model holding its FP32 and INT8 IRs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgeclass import flock
from edgeclass.errors import ModelNotFoundError, UsageError
from edgeclass.hashing import sha256_files

FP32_XML = "model_fp32.xml"
INT8_XML = "model_int8.xml"
INT8_REJECTED_XML = "model_int8.rejected.xml"  # written when the INT8 gate refuses a new INT8
LOCK_FILE = ".edgeclass.lock"  # flock: writers of IR pairs exclusive, readers shared
DEFAULT_MODELS_ROOT = Path("models")
PRECISIONS = ("int8", "fp32", "bf16")


def models_root() -> Path:
    """``$EDGECLASS_MODELS`` or ``./models``."""
    return Path(os.environ.get("EDGECLASS_MODELS", DEFAULT_MODELS_ROOT))


@dataclass(frozen=True)
class ModelDir:
    path: Path

    @property
    def fp32_xml(self) -> Path:
        return self.path / FP32_XML

    @property
    def int8_xml(self) -> Path:
        return self.path / INT8_XML

    @property
    def int8_rejected_xml(self) -> Path:
        return self.path / INT8_REJECTED_XML

    @property
    def has_int8(self) -> bool:
        return self.int8_xml.is_file()

    @property
    def int8_refused(self) -> bool:
        """A refused INT8 is on disk and no accepted one: ``run`` falls back to FP32."""
        return not self.has_int8 and self.int8_rejected_xml.is_file()

    @contextlib.contextmanager
    def _locked(self, shared: bool) -> Iterator[None]:
        try:
            fd = flock.open_lock(self.path / LOCK_FILE)
        except OSError:  # read-only model folder: nobody can be writing it through edgeclass
            yield
            return
        with flock.holding(fd, shared):
            yield

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """Shared lock while an IR pair is read (never sees a half-replaced pair)."""
        return self._locked(shared=True)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock while an IR pair is replaced."""
        return self._locked(shared=False)

    def remove_ir(self, xml: Path) -> None:
        """Delete an IR pair (``.xml`` first: without it the pair is not a model)."""
        with self.writing():
            for p in (xml, xml.with_suffix(".bin")):
                p.unlink(missing_ok=True)

    def model_id(self, precision: str) -> str:
        """The id every result row names its model by: ``<folder>@<12 hex of sha256(xml + bin)>``.

        It changes when the graph or the weights change and not otherwise; the INT8 and FP32 IRs
        of one folder have different ids. The folder is named after a symlink is resolved, so
        ``models/current`` gives the id of the model it points at. Computed once per run."""
        xml = self.xml_for(precision)
        with self.reading():
            digest = sha256_files([xml, xml.with_suffix(".bin")])
        return f"{self.path.resolve().name}@{digest[:12]}"

    def default_precision(self) -> str:
        return "int8" if self.has_int8 else "fp32"

    def xml_for(self, precision: str) -> Path:
        if precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        xml = self.int8_xml if precision == "int8" else self.fp32_xml
        if not xml.is_file():
            hint = (
                f"run `edgeclass quantize {self.path} --calibration DIR` first"
                if precision == "int8"
                else "run `edgeclass convert` first"
            )
            raise ModelNotFoundError(f"{xml} does not exist: {hint}")
        return xml


def _is_model_dir(path: Path) -> bool:
    return (path / FP32_XML).is_file() or (path / INT8_XML).is_file()


def latest_model_dir(root: Path) -> ModelDir:
    """The model folder under ``root`` whose IR was written most recently."""
    candidates = []
    if root.is_dir():
        for child in root.iterdir():
            if child.is_dir() and _is_model_dir(child):
                mtime = max((p.stat().st_mtime for p in child.glob("model_*.xml")), default=0.0)
                candidates.append((mtime, child.name, child))
    if not candidates:
        raise ModelNotFoundError(
            f"no converted model under {root}/: run `edgeclass convert` first, or pass --model DIR"
        )
    return ModelDir(max(candidates)[2])


def resolve_model_dir(path: Path | None) -> ModelDir:
    if path is None:
        return latest_model_dir(models_root())
    if path.is_file() and path.suffix == ".xml":
        path = path.parent
    if not path.is_dir():
        raise ModelNotFoundError(f"{path} is a file, not a model folder" if path.exists()
                                 else f"model folder {path} does not exist")
    if not _is_model_dir(path):
        raise ModelNotFoundError(f"{path} holds no {FP32_XML} or {INT8_XML}: run `edgeclass convert` first")
    real = path.resolve()
    # a symlink (`models/current`, swapped by `edgeclass promote`) is followed once, here: the
    # run reads its IR, id and metadata from the folder the link named at start
    return ModelDir(real if real != path.absolute() else path)
