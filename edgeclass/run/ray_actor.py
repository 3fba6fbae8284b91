"""The Ray Data actor of ``edgeclass run --ray``: one compiled model per actor, fed batches of
work units (an image, or a time range of a video file), answering with one row per result.

Each unit goes through the same code as a single-box run: :func:`load_image_tensor` for
images, :func:`edgeclass.media.video.range_items` for video ranges, and the
:class:`~edgeclass.run.pipeline.Pipeline` (decode threads + async infer requests) for both.
Bad files are rows with a status, never a failed task.

Rows travel as plain columns (no file names: the driver keeps them, so names that are not
valid UTF-8 never meet Arrow): ``seq`` (the unit), ``frame``/``ts`` (-1/NaN for images),
``status``, ``error`` (bytes), ``id_i``/``label_i``/``score_i`` per rank, ``node``,
``precision``. Each video range ends with a marker row (empty status), even when it held no
frame, so the driver knows when every range of a video is back.
"""

from __future__ import annotations


import os
import tempfile
import threading
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from edgeclass import __version__
from edgeclass.atomic import write_bytes
from edgeclass.hashing import sha256_bytes
from edgeclass.errors import ModelError
from edgeclass.media.decode import DecodeOptions, ImageReadError, check_readable, load_image_tensor
from edgeclass.media.video.options import VideoOptions
from edgeclass.results import Result, Status, WorkItem

IMAGE, VIDEO = 0, 1  # unit kinds

END_OF_RANGE = Result("", Status.OK)  # stand-in for the marker row (written with an empty status)


@dataclass(frozen=True)
class ActorConfig:
    """Everything an actor needs, shipped in the job (the IR bytes travel as an object ref)."""

    ir_ref: list  # [ObjectRef of {file name: bytes}] (in a list: Ray must not resolve it early)
    sha256: dict  # file name -> hex digest, checked on the worker
    precision: str
    cpus: int
    top_k: int
    decode: DecodeOptions
    video: VideoOptions
    cache: bool = True  # compiled-model cache in the worker's ~/.cache/edgeclass/ov_cache
    version: str = __version__
    model_id: str = ""  # the driver's id of the IR (the `model` column the driver writes)
    quiet_libraries: bool = False  # the decoding libraries' stderr lines off (Ray forwards them to the driver)


def materialize_model(files: dict[str, bytes], expected: dict[str, str]) -> Path:
    """Write the shipped IR into a per-hash folder on this node; check every file's sha256."""
    tag = sha256_bytes("".join(sorted(expected.values())).encode())[:16]
    folder = Path(tempfile.gettempdir()) / "edgeclass-ray" / tag
    folder.mkdir(parents=True, exist_ok=True)
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file() or sha256_bytes(path.read_bytes()) != digest:
            write_bytes(path, files[name], durable=False)
        got = sha256_bytes(path.read_bytes())
        if got != digest:
            raise ModelError(f"model file {name} on this worker has sha256 {got[:16]}…, expected {digest[:16]}…")
    return folder


def _raise(exc: Exception):
    raise exc


def _check_model_id(here: str, driver: str) -> None:
    """The IR compiled here is the one the driver's rows name: the same digest (the folder part
    of the id differs: the IR lives in a per-hash folder on the worker)."""
    if here.rpartition("@")[2] != driver.rpartition("@")[2]:
        raise ModelError(f"the model compiled on this worker is {here}, the driver writes rows of {driver}")


class RayClassifier:
    """A Ray Data callable class: ``map_batches(RayClassifier, fn_constructor_args=(config,))``."""

    def __init__(self, config: ActorConfig):
        from edgeclass.ovruntime import ov
        import ray

        from edgeclass.engine import Classifier, EngineOptions, default_cache_dir
        from edgeclass.modelfiles.folder import ModelDir

        if config.version != __version__:
            raise ModelError(f"edgeclass {__version__} on this worker, {config.version} on the driver: install the same version")
        from edgeclass.media.workers import prepare_decode_workers

        if config.quiet_libraries:
            from edgeclass.media.quiet import quiet_native_logging

            quiet_native_logging()
        prepare_decode_workers(config.cpus)  # as `run --threads`: this actor's share of the node
        folder = materialize_model(ray.get(config.ir_ref[0]), config.sha256)
        core = ov.Core()
        core.set_property("CPU", {"ENABLE_CPU_PINNING": False})  # Ray, not OpenVINO, places processes
        engine = EngineOptions(precision=config.precision, threads=config.cpus, performance_hint="THROUGHPUT",
                               cache_dir=default_cache_dir() if config.cache else None)
        self.classifier = Classifier(ModelDir(folder), engine, core)
        _check_model_id(self.classifier.model_id, config.model_id)
        self.config = config
        # video decoding within the actor's share too (FFmpeg's threads, one key-frame reader)
        self.video = replace(config.video, decoder_threads=config.video.decoder_threads or config.cpus)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from edgeclass.run.pipeline import Pipeline

        items = self._items(batch)
        pipeline = Pipeline(self.classifier, self.config.top_k, workers=self.config.cpus)
        by_unit: dict[int, list[Result]] = {}
        for done in pipeline.run(items, threading.Event()):
            by_unit.setdefault(done.item.tag, []).append(done.result)
        rows: list[tuple[int, Result | None]] = []
        for seq, kind in zip(batch["seq"], batch["kind"]):
            rows += [(int(seq), r) for r in by_unit.get(int(seq), ())]
            if int(kind) == VIDEO:  # end-of-range marker: the driver journals a video when all came back
                rows.append((int(seq), None))
        return self._columns(rows)

    def _items(self, batch: dict[str, np.ndarray]):
        from edgeclass.media.inputs import Source

        pp = self.classifier.metadata.preprocess
        for seq, kind, path, start, end in zip(batch["seq"], batch["kind"], batch["path"], batch["start_ms"], batch["end_ms"]):
            path = os.fsdecode(bytes(path))
            if int(kind) == IMAGE:
                yield WorkItem(path, partial(load_image_tensor, path, pp, self.config.decode), tag=int(seq))
                continue
            from edgeclass.media.video import range_items

            if float(start) <= 0:
                try:
                    check_readable(path)  # as a single-box run: missing/unreadable say so
                except ImageReadError as exc:
                    yield WorkItem(path, partial(_raise, exc), tag=int(seq))
                    continue
            end_ms = None if np.isnan(end) else float(end)
            for item in range_items(Source(path, "video"), pp, self.video, float(start), end_ms):
                yield WorkItem(item.source, item.load, item.frame, item.timestamp_ms, int(seq))

    def _columns(self, rows: list[tuple[int, Result | None]]) -> dict[str, np.ndarray]:
        status = ["" if r is None else r.status.value for _, r in rows]
        results = [(s, r or END_OF_RANGE) for s, r in rows]
        cols: dict[str, np.ndarray] = {
            "seq": np.array([s for s, _ in results], dtype=np.int64),
            "frame": np.array([-1 if r.frame is None else r.frame for _, r in results], dtype=np.int64),
            "ts": np.array([np.nan if r.timestamp_ms is None else r.timestamp_ms for _, r in results], dtype=np.float64),
            "status": np.array(status, dtype=object),
            "error": np.array([r.error.encode("utf-8", "surrogateescape") for _, r in results], dtype=object),
            "node": np.array([self.node] * len(results), dtype=object),
            "precision": np.array([self.classifier.inference_precision] * len(results), dtype=object),
        }
        for i in range(self.config.top_k):
            preds = [r.predictions[i] if i < len(r.predictions) else None for _, r in results]
            cols[f"id_{i}"] = np.array([-1 if p is None else p.class_id for p in preds], dtype=np.int64)
            cols[f"label_{i}"] = np.array(["" if p is None else p.label for p in preds], dtype=object)
            cols[f"score_{i}"] = np.array([np.nan if p is None else p.score for p in preds], dtype=np.float64)
        return cols
