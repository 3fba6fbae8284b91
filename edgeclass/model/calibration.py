"""Calibration and validation image sets: discovery, deterministic subsetting, provenance.

Images go through :func:`edgeclass.media.decode.load_image_tensor`, the very path ``run`` uses.
Files that do not decode are counted and reported, never silently dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeclass.hashing import sha256_bytes
from edgeclass.media.decode import DecodeOptions, ImageReadError, load_image_tensor
from edgeclass.errors import CalibrationError
from edgeclass.media.inputs import walk_sorted
from edgeclass.media.preprocess import PreprocessConfig

ADD_IMAGES_HINT = (
    "put 100-300 representative images (the scenes your cameras see) in the folder, "
    "e.g. `cp /path/to/samples/*.jpg calibration/`, then run `edgeclass quantize MODEL_DIR --calibration DIR`"
)


@dataclass
class ImageSet:
    """Decoded model inputs plus where they came from."""

    paths: list[str]
    tensors: list[np.ndarray]
    targets: list[int | None] = field(default_factory=list)  # class ids from folder names, if any
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def __len__(self) -> int:
        return len(self.tensors)

    @property
    def labelled(self) -> bool:
        return bool(self.targets) and all(t is not None for t in self.targets)


def list_images(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise CalibrationError(f"calibration folder {folder} does not exist: {ADD_IMAGES_HINT}")
    return list(walk_sorted(str(folder), include_videos=False))


def files_hash(paths: list[str]) -> str:
    """sha256 over the sorted (path, size) list: identifies the calibration set."""
    lines = []
    for p in sorted(paths):
        try:
            size = os.path.getsize(p)
        except OSError:
            size = -1
        lines.append(f"{p}\0{size}\n")
    return sha256_bytes("".join(lines).encode("utf-8", "surrogateescape"))


def even_subset(items: list[str], n: int) -> list[str]:
    """``n`` items spread evenly over the sorted list (deterministic, covers all subfolders)."""
    if n >= len(items):
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in sorted(set(idx.tolist()))]


def target_for(path: str, root: Path, labels: tuple[str, ...]) -> int | None:
    """ImageFolder convention: the first sub-folder names the class (label text or class id)."""
    rel = Path(path).relative_to(root)
    if len(rel.parts) < 2:
        return None
    name = rel.parts[0]
    if name in labels:
        return labels.index(name)
    norm = {label.replace(" ", "_").lower(): i for i, label in enumerate(labels)}
    if name.lower() in norm:
        return norm[name.lower()]
    if name.isdigit() and int(name) < len(labels):
        return int(name)
    return None


def load_set(
    paths: list[str],
    config: PreprocessConfig,
    root: Path | None = None,
    labels: tuple[str, ...] = (),
    options: DecodeOptions = DecodeOptions(),
) -> ImageSet:
    out = ImageSet([], [], [], [])
    for p in paths:
        try:
            tensor = load_image_tensor(p, config, options)
        except ImageReadError as exc:
            out.failed.append((p, f"{exc.status.value}: {exc.message}"))
            continue
        out.paths.append(p)
        out.tensors.append(tensor)
        out.targets.append(target_for(p, root, labels) if root is not None and labels else None)
    return out


@dataclass(frozen=True)
class Split:
    """Which images calibrate and which check INT8 against FP32.

    Calibration never gives up images to the check: it uses ``subset_size`` images (all of a
    smaller folder). The check uses, in order of preference, a ``--validation`` folder, the
    folder's images left over by the subset (disjoint), or, when fewer than ``min_check`` are
    left over, those plus the calibration images each seen twice (as is and mirrored, a view
    NNCF never calibrated on). ``benchmarks/int8_gate.py`` measures that the in-sample check
    tracks the drop on unseen labelled images.
    """

    calibration: list[str]
    held_out: list[str]  # disjoint from calibration
    available: int
    reuse_calibration: bool  # the check also uses the calibration images (+ mirrors)


def split_folder(
    folder: Path, subset_size: int, validation_folder: Path | None, min_check: int = 100, max_check: int = 500
) -> Split:
    files = list_images(folder)
    if not files:
        raise CalibrationError(f"calibration folder {folder} has no images: {ADD_IMAGES_HINT}")
    calib = even_subset(files, subset_size)
    if validation_folder is not None:
        return Split(calib, [], len(files), False)
    chosen = set(calib)
    rest = even_subset([f for f in files if f not in chosen], max_check)
    return Split(calib, rest, len(files), len(rest) < min_check)
