"""Reading and writing IR pairs (``.xml`` + ``.bin``) under the model folder's locks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from edgeclass import __version__
from edgeclass.atomic import replace_group
from edgeclass.errors import ModelError, UsageError
from edgeclass.modelfiles.folder import ModelDir
from edgeclass.modelfiles.metadata import ModelMetadata, read_metadata, write_metadata
from edgeclass.ovruntime import ov


def versions() -> dict[str, str]:
    out = {"edgeclass": __version__, "openvino": ov.get_version()}
    try:
        import timm
        import torch

        out["timm"] = timm.__version__
        out["torch"] = torch.__version__
    except ImportError:
        pass
    return out


def save_ir(model: ov.Model, meta: ModelMetadata, xml: Path) -> None:
    """Write metadata into ``model`` and save it uncompressed (FP32 weights: NNCF quantizes from
    these). The ``.xml``/``.bin`` pair is replaced as one (:func:`edgeclass.atomic.replace_group`)
    under the model folder's write lock, so a reader never sees a mismatched pair."""
    xml.parent.mkdir(parents=True, exist_ok=True)
    write_metadata(model, meta)

    def write(temps: dict[Path, Path]) -> None:
        ov.save_model(model, temps[xml], compress_to_fp16=False)

    with ModelDir(xml.parent).writing():
        replace_group(write, [xml, xml.with_suffix(".bin")])


def read_ir(core: ov.Core, xml: Path) -> ov.Model:
    """Read an IR pair under the folder's read lock; a damaged pair is a :class:`ModelError`."""
    try:
        with ModelDir(xml.parent).reading():
            return core.read_model(xml)
    except RuntimeError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise ModelError(f"cannot read {xml}: {lines[-1] if lines else exc} (convert the model again)") from exc


@dataclass(frozen=True)
class IrSummary:
    """One IR of a model folder, as ``edgeclass info`` shows it."""

    xml: Path
    metadata: ModelMetadata
    model_id: str | None  # the `model` column of runs with it (None: a rejected INT8 IR, never run)


def describe_irs(md: ModelDir, core: ov.Core | None = None) -> list[IrSummary]:
    """The FP32, INT8 and rejected INT8 IRs a folder holds, each with its metadata (a damaged IR
    is a :class:`ModelError`; a folder without any IR a :class:`UsageError`)."""
    core = core or ov.Core()
    found = []
    for xml, precision in ((md.fp32_xml, "fp32"), (md.int8_xml, "int8"), (md.int8_rejected_xml, None)):
        if xml.is_file():
            found.append(IrSummary(xml, read_metadata(read_ir(core, xml)), precision and md.model_id(precision)))
    if not found:
        raise UsageError(f"no IR in {md.path}")
    return found
