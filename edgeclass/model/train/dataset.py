"""A training dataset in ImageFolder layout: discovery, checks, and the held-out split.

Layouts (class = sub-folder name; images anywhere below it, sorted):

* ``DATASET/<class>/...``: every 5th image of each class is held out (deterministic);
* ``DATASET/<class>/...`` + ``DATASET/val/<class>/...``: ``val/`` is the held-out split;
* ``DATASET/train/<class>/...`` + ``DATASET/val/<class>/...``.

Bad datasets raise :class:`DatasetError` (a usage error: exit 2) with what to fix.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgeclass.errors import UsageError
from edgeclass.media.inputs import walk_sorted
from edgeclass.results import UNKNOWN_LABEL  # what `run --min-score` writes: no class may be called this

VAL_DIR = "val"
TRAIN_DIR = "train"
FEW_IMAGES = 10  # fewer training images than this in a class: a warning with the counts
HOLDOUT_EVERY = 5  # without val/: every 5th image of a class is held out


class DatasetError(UsageError):
    """The dataset cannot be trained on (no classes, one class, empty classes...)."""


@dataclass(frozen=True)
class Sample:
    path: str
    target: int


@dataclass
class Dataset:
    root: Path
    labels: tuple[str, ...]
    train: list[Sample]
    heldout: list[Sample]
    heldout_source: str  # "val/ folder" or "every 5th image held out"
    warnings: list[str] = field(default_factory=list)

    def counts(self, split: str) -> dict[str, int]:
        samples = self.train if split == "train" else self.heldout
        out = {label: 0 for label in self.labels}
        for s in samples:
            out[self.labels[s.target]] += 1
        return out

    def without(self, failed: set[str]) -> Dataset:
        """The dataset minus images that did not decode (checked again: no class may end up empty)."""
        ds = Dataset(
            self.root,
            self.labels,
            [s for s in self.train if s.path not in failed],
            [s for s in self.heldout if s.path not in failed],
            self.heldout_source,
            list(self.warnings),
        )
        _check_nonempty(ds.counts("train"), "after skipping unreadable images, ")
        if not ds.heldout:
            raise DatasetError(f"none of the {len(self.heldout)} held-out images could be decoded ({self.heldout_source})")
        return ds


def _class_dirs(root: Path, exclude: tuple[str, ...] = ()) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in exclude),
        key=lambda p: p.name,
    )


def _images(folder: Path) -> list[str]:
    return list(walk_sorted(str(folder), include_videos=False))


def _check_nonempty(counts: dict[str, int], prefix: str = "") -> None:
    empty = [label for label, n in counts.items() if n == 0]
    if empty:
        raise DatasetError(
            f"{prefix}classes with no training images: {', '.join(empty)}. "
            "Put images in every class folder, or remove the empty folders"
        )


def _layout(root: Path) -> tuple[Path, Path | None]:
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist (expected one sub-folder of images per class)")
    val = root / VAL_DIR
    if (root / TRAIN_DIR).is_dir() and val.is_dir():
        return root / TRAIN_DIR, val
    return root, (val if val.is_dir() else None)


def _split(per_class: dict[int, list[str]]) -> tuple[list[Sample], list[Sample]]:
    train: list[Sample] = []
    held: list[Sample] = []
    for target, files in per_class.items():
        hold = set(files[HOLDOUT_EVERY - 1 :: HOLDOUT_EVERY])
        if not hold and len(files) >= 2:
            hold = {files[-1]}
        for f in files:
            (held if f in hold else train).append(Sample(f, target))
    return train, held


def _read_val(val_root: Path, labels: tuple[str, ...], warnings: list[str]) -> list[Sample]:
    dirs = _class_dirs(val_root)
    strays = [d.name for d in dirs if d.name not in labels]
    if strays:
        raise DatasetError(
            f"{val_root} has folders that are not training classes: {', '.join(strays)} "
            f"(training classes: {', '.join(labels)})"
        )
    held = [Sample(f, labels.index(d.name)) for d in dirs for f in _images(d)]
    missing = [label for label in labels if not any(labels[s.target] == label for s in held)]
    if missing:
        warnings.append(f"no held-out images in {val_root} for: {', '.join(missing)} (their recall cannot be measured)")
    return held


def scan(root: Path) -> Dataset:
    """Read and check an ImageFolder dataset; raises :class:`DatasetError`."""
    train_root, val_root = _layout(Path(root))
    dirs = _class_dirs(train_root, exclude=(VAL_DIR,) if train_root == Path(root) else ())
    warnings: list[str] = []
    loose = [e.name for e in os.scandir(train_root) if e.is_file() and _images_here(e.name)]
    if loose:
        warnings.append(f"{len(loose)} images directly in {train_root} (not in a class folder) are ignored")
    if not dirs:
        raise DatasetError(
            f"{train_root} has no class sub-folders: put the images of each class in a folder named "
            "after the class (e.g. DATASET/cat/*.jpg, DATASET/dog/*.jpg)"
        )
    labels = tuple(d.name for d in dirs)
    if len(labels) == 1:
        raise DatasetError(f"{train_root} has one class ({labels[0]}): a classifier needs at least two class folders")
    if UNKNOWN_LABEL in labels:
        raise DatasetError(
            f"a class is named {UNKNOWN_LABEL!r}, the label `run --min-score` gives to low-confidence images: "
            "rename that folder (e.g. 'other')"
        )
    per_class = {i: _images(d) for i, d in enumerate(dirs)}
    _check_nonempty({labels[i]: len(f) for i, f in per_class.items()})
    if val_root is not None:
        train = [Sample(f, i) for i, files in per_class.items() for f in files]
        heldout, source = _read_val(val_root, labels, warnings), f"{val_root}"
    else:
        train, heldout = _split(per_class)
        source = f"every {HOLDOUT_EVERY}th image of each class"
    if not heldout:
        raise DatasetError(
            f"no images to hold out for evaluation: add a {VAL_DIR}/ folder with one sub-folder per class, "
            "or at least 2 images per class"
        )
    ds = Dataset(Path(root), labels, train, heldout, source, warnings)
    few = {k: n for k, n in ds.counts("train").items() if n < FEW_IMAGES}
    if few:
        warnings.append(
            "few training images: " + ", ".join(f"{k} {n}" for k, n in few.items())
            + f" (at least {FEW_IMAGES} per class recommended; more gives better results)"
        )
    return ds


def _images_here(name: str) -> bool:
    from edgeclass.media.decode import IMAGE_EXTENSIONS

    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


class SplitFolders:
    """Temporary ImageFolder trees of symlinks (``train/<label>/``, ``heldout/<label>/``) for
    the INT8 calibration and gate, which take folders. The user's files are only linked to."""

    def __init__(self, dataset: Dataset):
        self._tmp = tempfile.TemporaryDirectory(prefix="edgeclass-train-")
        base = Path(self._tmp.name)
        self.train = self._link(base / "train", dataset.train, dataset.labels)
        self.heldout = self._link(base / "heldout", dataset.heldout, dataset.labels)

    @staticmethod
    def _link(folder: Path, samples: list[Sample], labels: tuple[str, ...]) -> Path:
        for label in labels:
            (folder / label).mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(samples):
            src = Path(s.path).resolve()
            os.symlink(src, folder / labels[s.target] / f"{i:06d}_{src.name}")
        return folder

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> SplitFolders:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
