"""The ordered, bounded, parallel classification pipeline behind ``edgeclass run``.

decode + preprocess in a thread pool (OpenCV and NumPy release the GIL)
    -> OpenVINO infer requests started asynchronously (THROUGHPUT streams)
    -> results re-ordered to input order and yielded as soon as they are next in line.

Every stage is bounded: at most ``window`` items are being decoded or waiting, and at most
the number of infer requests are in flight, so memory is flat whatever the input count.
Each request infers one image, so results do not depend on the number of workers or requests.
Inference uses a round-robin pool of requests (no Python callbacks in OpenVINO's threads).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass


from edgeclass.media.decode import ImageReadError
from edgeclass.engine import Classifier, RequestPool
from edgeclass.results import Result, Status, WorkItem


@dataclass(frozen=True)
class Done:
    item: WorkItem
    result: Result


def _failure(item: WorkItem, status: Status, message: str) -> Result:
    return Result(item.source, status, message, (), item.frame, item.timestamp_ms)


class Pipeline:
    def __init__(self, classifier: Classifier, top_k: int = 5, workers: int = 2, requests: int = 0):
        self.classifier = classifier
        self.top_k = top_k
        self.workers = max(1, workers)
        self.requests = requests

    def run(self, items: Iterable[WorkItem | None], stop: threading.Event | None = None) -> Iterator[Done]:
        """Yield one :class:`Done` per item, in input order. Stops taking items once ``stop`` is set.

        ``items`` may yield None to say "nothing available right now" (live sources): the
        pipeline then finishes and yields what it has instead of waiting for more input.
        """
        stop = stop or threading.Event()
        state = _RunState(self, RequestPool(self.classifier.compiled, self.requests), iter(items))
        started = time.perf_counter()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="edgeclass-decode") as decoders:
            try:
                while True:
                    state.fill(decoders, stop)
                    if state.pending:
                        state.submit_next()
                    elif state.exhausted or stop.is_set():
                        break
                    else:
                        state.record(state.pool.drain())  # idle live source: finish what is in flight
                    yield from state.in_order()
                state.record(state.pool.drain())
                yield from state.in_order()
            finally:
                state.close(time.perf_counter() - started)


class _RunState:
    """One :meth:`Pipeline.run`: items being decoded (``pending``, in input order), requests in
    flight (``pool``), results waiting for their turn (``finished``)."""

    def __init__(self, pipeline: Pipeline, pool: RequestPool, source: Iterator[WorkItem | None]):
        self.pipeline, self.pool, self.source = pipeline, pool, source
        self.usage = pipeline.classifier.usage
        self.window = 2 * pipeline.workers + pool.size  # items decoding or waiting, at most
        self.pending: deque[tuple[int, WorkItem, Future]] = deque()
        self.finished: dict[int, Done] = {}
        self.seq = self.next_out = 0
        self.exhausted = False

    def fill(self, decoders: ThreadPoolExecutor, stop: threading.Event) -> None:
        """Hand items to the decode workers until the window is full, the input has nothing
        right now (None) or is exhausted, or ``stop`` is set; in bursts: a new one only once no
        more than one item per worker is left. A worker then decodes several images back to back
        (its caches warm) rather than one per wake between inference slices, which evict them
        (benchmarks/contention.py: a small JPEG's decode and resize cost 20 % less CPU so; `run`
        2 % more images/s)."""
        if len(self.pending) > self.pipeline.workers:
            return
        while not self.exhausted and not stop.is_set() and len(self.pending) < self.window:
            try:
                item = next(self.source)
            except StopIteration:
                self.exhausted = True
                return
            if item is None:  # a live source has nothing yet: process what we have
                return
            self.pending.append((self.seq, item, decoders.submit(item.load)))
            self.seq += 1

    def submit_next(self) -> None:
        """The oldest item's tensor to an infer request (a failed decode is its row)."""
        n, item, future = self.pending.popleft()
        t0 = time.perf_counter()
        try:
            tensor = future.result()
        except ImageReadError as exc:
            self.finished[n] = Done(item, _failure(item, exc.status, exc.message))
        except Exception as exc:  # noqa: BLE001
            self.finished[n] = Done(item, _failure(item, Status.ERROR, f"{type(exc).__name__}: {exc}"))
        else:
            self.usage.input_wait_s += time.perf_counter() - t0
            self.usage.images += 1
            self.record(self.pool.submit(tensor[None], (n, item)))

    def record(self, results: list) -> None:
        classifier, top_k = self.pipeline.classifier, self.pipeline.top_k
        for (n, item), probs in results:
            try:
                preds = classifier.predictions(probs, top_k)
                result = Result(item.source, Status.OK, "", preds, item.frame, item.timestamp_ms)
            except Exception as exc:  # noqa: BLE001 - becomes a row, never a crash
                result = _failure(item, Status.ERROR, f"inference failed: {exc}")
            self.finished[n] = Done(item, result)

    def in_order(self) -> Iterator[Done]:
        while self.next_out in self.finished:
            yield self.finished.pop(self.next_out)
            self.next_out += 1

    def close(self, wall_s: float) -> None:
        for _, _, future in self.pending:
            future.cancel()
        self.pool.drain()
        self.usage.wall_s += wall_s
        self.usage.inference_wait_s += self.pool.wait_s
