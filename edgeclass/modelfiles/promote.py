"""``edgeclass promote``: make a model live behind a symbolic link (``models/current``), and undo it.

The cron pattern: jobs run ``edgeclass run --model models/current``; ``promote NEW --link
models/current`` points the link at NEW atomically (a temporary symlink renamed over the old
one: a reader sees the old target or the new one, never no link). A running job keeps the model
it opened (``run`` follows the link once, at start: :func:`edgeclass.modelfiles.folder.resolve_model_dir`);
the next job gets the new one.

Each promotion pushes the link's previous target onto a small history beside the link
(``<link>.promotions.json``, written atomically; this module is its one reader and writer);
``promote --rollback`` points the link back at the last one. ``promote`` refuses when the last
``edgeclass compare`` of the current model against NEW refused NEW (:mod:`edgeclass.modelfiles.verdicts`),
unless forced. Concurrent promotions of links in one folder are serialised by a ``flock`` on
that folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeclass import atomic, flock
from edgeclass.errors import AccuracyGateError, ModelNotFoundError, OutputError, UsageError
from edgeclass.modelfiles.folder import FP32_XML, INT8_XML, ModelDir

HISTORY_SUFFIX = ".promotions.json"
HISTORY_KEPT = 20
TEMP_TAG = "promote"


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` (or ``--rollback``) did."""

    link: Path
    target: str  # what the link now holds (relative to the link's folder when possible)
    previous: str | None  # what it held before (None: the link is new)
    model_dir: Path  # the folder the link now names
    changed: bool = True  # False: the link already named this folder
    verdict: dict[str, Any] | None = None  # the compare record consulted (None: none recorded)
    forced: bool = False
    notes: tuple[str, ...] = ()


def history_path(link: Path) -> Path:
    return link.with_name(link.name + HISTORY_SUFFIX)


def _is_model_folder(folder: Path) -> bool:
    return (folder / FP32_XML).is_file() or (folder / INT8_XML).is_file()


def model_ids(folder: Path) -> set[str]:
    """The ids of every IR in ``folder`` (a compare may have used either precision)."""
    md = ModelDir(folder)
    return {md.model_id(p) for p, xml in (("fp32", md.fp32_xml), ("int8", md.int8_xml)) if xml.is_file()}


def _check_link(link: Path) -> None:
    if os.path.lexists(link) and not link.is_symlink():
        what = "folder" if link.is_dir() else "file"
        raise UsageError(f"--link {link} is a real {what}, not a symbolic link; promote never replaces it: "
                         f"move it aside (e.g. `mv {link} {link}-v1`) and promote that folder")
    if not link.parent.is_dir():
        raise UsageError(f"--link {link}: the folder {link.parent} does not exist")


def _model_folder(new: Path) -> Path:
    if not new.is_dir():
        raise ModelNotFoundError(f"model folder {new} does not exist")
    if not _is_model_folder(new):
        raise ModelNotFoundError(f"{new} holds no {FP32_XML} or {INT8_XML}: not a model folder")
    return new.resolve()


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive ``flock`` on the link's folder: one promotion at a time per folder."""
    try:
        fd = flock.open_lock(folder, directory=True)
    except OSError as exc:
        raise OutputError(f"cannot open {folder}: {exc.strerror or exc}") from exc
    with flock.holding(fd):
        yield


def _read_history(link: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(history_path(link).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the promotion history {history_path(link)}: {exc}") from exc
    entries = data.get("history") if isinstance(data, dict) else None
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("target"), str)] if isinstance(entries, list) else []


def _write_history(link: Path, entries: list[dict[str, Any]]) -> None:
    doc = {"schema": 1, "link": link.name, "history": entries[-HISTORY_KEPT:]}
    try:
        atomic.write_text(history_path(link), json.dumps(doc, indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write {history_path(link)}: {exc.strerror or exc}") from exc


def swap_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically: a temporary symlink renamed over it."""
    atomic.remove_stale_temps(link.parent, (TEMP_TAG,))
    tmp = atomic.temp_sibling(link, TEMP_TAG)
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"cannot point {link} at {target}: {exc.strerror or exc}") from exc
    atomic.fsync_dir(link.parent)


def _current(link: Path) -> tuple[str, Path] | None:
    """(target as written in the link, the folder it names), or None (no link, or dangling)."""
    if not link.is_symlink():
        return None
    written = os.readlink(link)
    try:
        folder = link.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return (written, folder) if _is_model_folder(folder) else None


def _check_verdict(current: Path, new: Path, force: bool) -> dict[str, Any] | None:
    """The last compare of the current model against NEW; refused -> AccuracyGateError unless forced."""
    from edgeclass.modelfiles.verdicts import last_verdict

    verdict = last_verdict(new, model_ids(current), model_ids(new))
    if verdict and verdict.get("verdict") == "refused" and not force:
        where = f" (report: {verdict['report']})" if verdict.get("report") else ""
        raise AccuracyGateError(
            f"the last `edgeclass compare` of {verdict['old']} (current) against {verdict['new']} refused it: "
            f"{verdict.get('summary', 'refused')}{where}; promote anyway with --force"
        )
    return verdict


def promote(new: Path, link: Path, force: bool = False) -> Promotion:
    _check_link(link)
    folder = _model_folder(new)
    target = os.path.relpath(folder, link.parent.resolve())
    with _folder_lock(link.parent):
        current = _current(link)
        notes = []
        if link.is_symlink() and current is None:
            notes.append(f"{link} pointed at {os.readlink(link)}, which holds no model: nothing to roll back to")
        if current is not None and current[1] == folder:
            return Promotion(link, current[0], current[0], folder, changed=False,
                             notes=(f"{link} already points at {folder}",))
        verdict = _check_verdict(current[1], folder, force) if current else None
        if current and verdict is None:
            notes.append(f"no `edgeclass compare {link} {new}` is recorded: promoted without a comparison")
        if current:
            entry = {"target": current[0], "folder": str(current[1]), "replaced_by": target,
                     "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            _write_history(link, _read_history(link) + [entry])  # before the swap: a kill leaves a no-op rollback
        swap_link(link, target)
    return Promotion(link, target, current[0] if current else None, folder, verdict=verdict,
                     forced=bool(force and verdict and verdict.get("verdict") == "refused"), notes=tuple(notes))


def rollback(link: Path) -> Promotion:
    """Point ``link`` back at the target the last promotion replaced."""
    _check_link(link)
    with _folder_lock(link.parent):
        history = _read_history(link)
        if not history:
            raise UsageError(f"nothing to roll back to: no earlier promotion of {link} is recorded "
                             f"({history_path(link).name} is missing or empty)")
        entry = history[-1]
        folder = (link.parent / entry["target"]).resolve()
        if not _is_model_folder(folder):
            raise ModelNotFoundError(f"cannot roll back {link}: its previous target {entry['target']} "
                                     "no longer holds a model")
        previous = os.readlink(link) if link.is_symlink() else None
        swap_link(link, entry["target"])  # before the history: a kill leaves the entry for a no-op retry
        _write_history(link, history[:-1])
    return Promotion(link, entry["target"], previous, folder)
