"""``edgeclass run --ray ADDRESS``: the driver of a run spread over a Ray cluster.

The driver lists inputs with the single-box listing code, skips what ``--resume`` finds done,
cuts video files into time ranges, and hands these work units to a Ray Data actor pool
(:mod:`edgeclass.run.ray_actor`: one compiled model per actor). Rows come back in input order
(``preserve_order``) and are written by :func:`edgeclass.run.runner.run` exactly as a
single-box run writes them: same output writer, resume journal, lock and summary. This module
is only the executor that :func:`~edgeclass.run.runner.run` calls instead of the local pipeline.

Every row names the model the driver shipped (``ClusterModel.model_id``, computed here from
the IR read and shipped; each actor checks that the IR it compiled has that id's digest).

Exactly once: the output and its resume journal *are* the ledger. A row is written, then its
source is journaled, on the driver; a killed worker node loses only units in flight (never
written, so ``--resume`` does them), a killed driver is the single-box case. A video is
journaled only when every one of its ranges came back.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from itertools import islice

from edgeclass.engine import EngineOptions
from edgeclass.errors import EXIT_INPUT_FAILURES, EdgeclassError, ModelError, UsageError
from edgeclass.media.inputs import Source, classify_path
from edgeclass.modelfiles.folder import ModelDir
from edgeclass.modelfiles.metadata import ModelMetadata
from edgeclass.results import Prediction, Result, Status, WorkItem
from edgeclass.run.pipeline import Done
from edgeclass.run.journal import SourceKey, file_key
from edgeclass.run.context import RunContext, RunOptions, RunSummary
from edgeclass.run.runner import skip_done

INSTALL_HINT = "pip install 'edgeclass[ray]'"
WINDOW = 100_000  # units per Ray Data execution (bounds the driver's memory on huge listings)
BATCH = 32  # units per block at most = per actor call and task (rows reach the driver task by task)
DEFAULT_SEGMENT_S = 60.0  # media time per video range
LOCAL_OBJECT_STORE = 256 * 1024 * 1024  # --ray local: small, so a small /dev/shm is enough
_ADDRESS = re.compile(r"^(auto|local|\[?[A-Za-z0-9_.:-]+\]?:\d{1,5})$")


def check_request(address: str, inputs: Sequence[str]) -> None:
    """Refuse before any work: Ray missing, a malformed address, live sources."""
    if not _ADDRESS.match(address):
        raise UsageError(f"--ray: expected auto, local or HOST:PORT, got {address!r}")
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--ray needs Ray Data, which is not installed: {INSTALL_HINT} ({exc})") from None
    for arg in inputs:
        _refuse_live(arg)


def _refuse_live(path: str) -> None:
    if classify_path(path) in ("stream", "camera"):
        from edgeclass.media.video import mask_credentials

        raise UsageError(f"--ray: live streams and cameras stay on one box ({mask_credentials(path)}): run them without --ray")


@dataclass(frozen=True)
class Unit:
    """One piece of work: an image, or the range [start_ms, end_ms) of a video file."""

    seq: int
    source: str
    kind: int  # ray_actor.IMAGE or ray_actor.VIDEO
    key: SourceKey  # the resume key, taken when listed (as in a single-box run)
    start_ms: float = 0.0
    end_ms: float | None = None
    ranges: int = 1  # how many units the source has


@dataclass
class ClusterModel:
    """What :func:`edgeclass.run.runner.run` reads from a classifier, without compiling here."""

    metadata: ModelMetadata
    model_dir: ModelDir
    precision: str
    model_id: str  # the `model` column of every row (ModelDir.model_id of the IR shipped)
    inference_precision: str = "per worker"  # reported by the actors with their rows


@dataclass
class ClusterSummary(RunSummary):
    ray: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "ray": self.ray}


def _not_loaded():
    raise RuntimeError("decoded on a Ray worker")


class RayRun:
    """Connect, ship the model, and execute runs on the cluster (a context manager)."""

    def __init__(self, address: str, model_dir: ModelDir, engine: EngineOptions, segment_s: float = DEFAULT_SEGMENT_S):
        self.address, self.model_dir, self.engine, self.segment_s = address, model_dir, engine, segment_s
        self.per_node: dict[str, int] = {}
        self.lost = 0
        self._ranges_done: dict[str, int] = {}  # video -> ranges back so far
        self._times: list[tuple[float, int]] = []  # (first row, rows of its batch), (last row, rows)

    # ------------------------------------------------------------------ set-up
    def __enter__(self) -> RayRun:
        import ray

        logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # failures are reported by edgeclass
        if self.address == "local":
            ray.init(address="local", num_cpus=self.engine.threads or len(os.sched_getaffinity(0)),
                     object_store_memory=LOCAL_OBJECT_STORE, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False,
                     _node_ip_address="127.0.0.1")  # a cluster for this run only: loopback
        else:
            try:
                ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UsageError(f"--ray {self.address}: cannot connect to a Ray cluster: {exc}") from None
        try:
            self._plan(ray)
            self.model = self._ship(ray)
        except BaseException:
            ray.shutdown()
            raise
        return self

    def __exit__(self, *exc) -> None:
        import ray

        ray.shutdown()

    def _plan(self, ray) -> None:
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
        if not nodes:
            raise UsageError(f"--ray {self.address}: the cluster has no node with a CPU")
        cpus = [int(n["Resources"]["CPU"]) for n in nodes]
        self.cpus = self.engine.threads or min(cpus)
        self.actors = sum(c // self.cpus for c in cpus)
        if self.actors == 0:
            raise UsageError(f"--threads {self.cpus}: no node of the cluster has that many CPUs (largest: {max(cpus)})")
        self.node_names = {n["NodeID"]: f"{n['NodeManagerAddress']}/{n['NodeID'][:8]}" for n in nodes}

    def _ship(self, ray) -> ClusterModel:
        from edgeclass.ovruntime import ov

        from edgeclass.modelfiles.metadata import read_metadata
        from edgeclass.hashing import sha256_bytes

        precision = self.engine.precision or self.model_dir.default_precision()
        xml = self.model_dir.xml_for(precision)
        with self.model_dir.reading():  # the bytes shipped are the IR read here, and named by its id
            files = {p.name: p.read_bytes() for p in (xml, xml.with_suffix(".bin"))}
            model_id = self.model_dir.model_id(precision)
            try:
                model = ov.Core().read_model(xml)
            except RuntimeError as exc:
                raise ModelError(f"cannot read {xml}: {str(exc).splitlines()[0]}") from exc
        self.files_ref = ray.put(files)
        self.sha256 = {name: sha256_bytes(data) for name, data in files.items()}
        return ClusterModel(read_metadata(model), self.model_dir, precision, model_id)

    def describe(self) -> str:
        return f"Ray cluster {self.address}: {len(self.node_names)} nodes, {self.actors} actors x {self.cpus} CPUs"

    # ------------------------------------------------------------------ the executor
    def execute(self, sources: Iterator[Source | None], ctx: RunContext) -> Iterator[Done]:
        """``runner.run``'s executor: the same arguments and output as ``runner.local_results``."""
        units = self._units(sources, ctx)
        while not ctx.stop.event.is_set():
            window = list(islice(units, WINDOW))
            if not window:
                return
            yield from self._run_window(window, ctx)

    def _units(self, sources: Iterator[Source | None], ctx: RunContext) -> Iterator[Unit]:
        from edgeclass.run.ray_actor import IMAGE, VIDEO

        seq = 0
        for source in sources:
            if source is None:
                continue
            _refuse_live(source.path)
            if skip_done(source, ctx.resume, ctx.counts, ctx.options.sort):
                continue
            if source.kind == "image":
                yield Unit(seq, source.path, IMAGE, file_key(source.path))
                seq += 1
                continue
            ranges, key = self._ranges(source.path, ctx.options), file_key(source.path)
            for start, end in ranges:
                yield Unit(seq, source.path, VIDEO, key, start, end, len(ranges))
                seq += 1

    def _ranges(self, path: str, options: RunOptions) -> list[tuple[float, float | None]]:
        """Time ranges of a video: multiples of the sampling step, the last open-ended."""
        from edgeclass.media.video import duration_ms

        video = options.video
        length = self.segment_s * 1000.0
        if not video.every_frame:
            step = (video.every_s or 1.0) * 1000.0
            length = max(1, round(length / step)) * step
        total = duration_ms(path)
        n = max(1, math.ceil(total / length)) if total else 1
        return [(k * length, None if k == n - 1 else (k + 1) * length) for k in range(n)]

    def _dataset(self, window: list[Unit], options: RunOptions):
        import ray

        from edgeclass.run.ray_actor import ActorConfig, RayClassifier

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # rows in input order, as on one box
        ctx.max_errored_blocks = -1  # a lost node's blocks are skipped (and redone by --resume)
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        config = ActorConfig([self.files_ref], self.sha256, self.model.precision, self.cpus, options.top_k,
                             options.decode, options.video, self.engine.cache_dir is not None,
                             model_id=self.model.model_id, quiet_libraries=options.quiet_libraries)
        items = [{"seq": u.seq, "kind": u.kind, "path": os.fsencode(u.source), "start_ms": u.start_ms,
                  "end_ms": math.nan if u.end_ms is None else u.end_ms} for u in window]
        # blocks of at most BATCH units, and at least 4 per actor so every actor has work queued
        per_block = max(1, min(BATCH, math.ceil(len(items) / (4 * self.actors))))
        ds = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / per_block))
        with warnings.catch_warnings():  # max_task_retries has no named parameter yet (Ray 2.60)
            warnings.simplefilter("ignore", DeprecationWarning)
            # a task on a dead actor fails at once (its units are redone by --resume) instead of
            # waiting for an actor that may never come back
            return ds.map_batches(RayClassifier, fn_constructor_args=(config,), batch_size=None,  # a block a call
                                  batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=self.actors),
                                  num_cpus=self.cpus, max_task_retries=0)

    def _run_window(self, window: list[Unit], ctx: RunContext) -> Iterator[Done]:
        from edgeclass.run.ray_actor import IMAGE

        options, completed, stop, reporter = ctx.options, ctx.completed, ctx.stop, ctx.reporter
        by_seq = {u.seq: u for u in window}
        ranges_done = self._ranges_done  # across windows: a video's ranges may straddle two
        done_units = 0
        try:
            for batch in self._dataset(window, options).iter_batches(batch_format="numpy", batch_size=None):
                self._times[min(len(self._times), 1):] = [(time.perf_counter(), len(batch["seq"]))]  # first, last
                for row in _rows(batch, options.top_k):
                    unit = by_seq[row["seq"]]
                    if row["status"] == "":  # the end of a video range
                        done_units += 1
                        ranges_done[unit.source] = ranges_done.get(unit.source, 0) + 1
                        if ranges_done[unit.source] == unit.ranges:
                            completed.add(unit.source)
                        continue
                    self.model.inference_precision = row["precision"]  # the run's classifier
                    node = self.node_names.get(row["node"], row["node"][:8])
                    self.per_node[node] = self.per_node.get(node, 0) + 1
                    if unit.kind == IMAGE:
                        done_units += 1
                        completed.add(unit.source)
                    yield Done(WorkItem(unit.source, _not_loaded, row["frame"], row["ts"], unit.key), _result(unit, row))
                if stop.event.is_set():
                    return
        except Exception as exc:  # noqa: BLE001 - a cluster failure ends the run, never a traceback
            cause = getattr(exc, "cause", None)
            if isinstance(cause, EdgeclassError):
                raise cause from None
            reporter.event(f"ray: the cluster failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            stop.stop("ray cluster failure", EXIT_INPUT_FAILURES)
        lost = len(window) - done_units
        if lost and not stop.event.is_set():
            self.lost += lost
            reporter.event(f"ray: {lost} work units lost with failed workers; rerun with --resume to do them")
            stop.stop("ray workers lost", EXIT_INPUT_FAILURES)

    def summarize(self, summary: RunSummary) -> ClusterSummary:
        out = ClusterSummary(**{f.name: getattr(summary, f.name) for f in fields(summary)})
        out.ray = {"address": self.address, "nodes": len(self.node_names), "actors": self.actors,
                   "cpus_per_actor": self.cpus, "rows_per_node": dict(sorted(self.per_node.items())),
                   "units_lost": self.lost, "rows_per_s_after_first": self._steady_rate(summary.counts.total)}
        return out

    def _steady_rate(self, rows: int) -> float | None:
        """Rows/s from the first rows back to the last (actor start-up and compilation excluded)."""
        if len(self._times) < 2 or self._times[-1][0] <= self._times[0][0]:
            return None
        return round((rows - self._times[0][1]) / (self._times[-1][0] - self._times[0][0]), 2)


def _rows(batch: dict, top_k: int) -> Iterator[dict]:
    for i in range(len(batch["seq"])):
        frame, ts = int(batch["frame"][i]), float(batch["ts"][i])
        yield {
            "seq": int(batch["seq"][i]),
            "frame": None if frame < 0 else frame,
            "ts": None if math.isnan(ts) else ts,
            "status": str(batch["status"][i]),
            "error": bytes(batch["error"][i]).decode("utf-8", "surrogateescape"),
            "node": str(batch["node"][i]),
            "precision": str(batch["precision"][i]),
            "preds": tuple(
                Prediction(int(batch[f"id_{k}"][i]), str(batch[f"label_{k}"][i]), float(batch[f"score_{k}"][i]))
                for k in range(top_k) if int(batch[f"id_{k}"][i]) >= 0
            ),
        }


def _result(unit: Unit, row: dict) -> Result:
    return Result(unit.source, Status(row["status"]), row["error"], row["preds"], row["frame"], row["ts"])
