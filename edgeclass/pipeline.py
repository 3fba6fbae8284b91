"""The ordered, bounded, parallel classification pipeline behind ``edgeclass run``.

decode + preprocess in a thread pool (OpenCV and NumPy release the GIL)
    -> OpenVINO ``AsyncInferQueue`` (THROUGHPUT streams)
    -> results re-ordered to input order and yielded as soon as they are next in line.

Every stage is bounded: at most ``window`` items are being decoded or waiting, and at most
the number of infer requests are in flight, so memory is flat whatever the input count.
Each request infers one image, so results do not depend on the number of workers or requests.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import openvino as ov

from edgeclass.decode import ImageReadError
from edgeclass.engine import Classifier
from edgeclass.results import Result, Status


@dataclass(frozen=True)
class WorkItem:
    """Something to classify: ``load()`` returns the model input or raises ImageReadError."""

    source: str
    load: Callable[[], np.ndarray]
    frame: int | None = None
    timestamp_ms: float | None = None
    tag: Any = None  # opaque, handed back with the result (resume bookkeeping)


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
        queue = ov.AsyncInferQueue(self.classifier.compiled, self.requests)
        window_size = 2 * self.workers + len(queue)
        finished: dict[int, Done] = {}
        lock = threading.Lock()

        def on_done(request: ov.InferRequest, userdata: tuple[int, WorkItem]) -> None:
            seq, item = userdata
            try:
                probs = request.get_output_tensor(0).data[0].copy()
                preds = self.classifier.predictions(probs, self.top_k)
                result = Result(item.source, Status.OK, "", preds, item.frame, item.timestamp_ms)
            except Exception as exc:  # noqa: BLE001 - becomes a row, never a crash
                result = _failure(item, Status.ERROR, f"inference failed: {exc}")
            with lock:
                finished[seq] = Done(item, result)

        queue.set_callback(on_done)
        pending: deque[tuple[int, WorkItem, Future]] = deque()
        source = iter(items)
        next_out = 0
        seq = 0
        exhausted = False

        def drain() -> Iterator[Done]:
            nonlocal next_out
            while True:
                with lock:
                    done = finished.pop(next_out, None)
                if done is None:
                    return
                next_out += 1
                yield done

        with ThreadPoolExecutor(self.workers, thread_name_prefix="edgeclass-decode") as pool:
            try:
                while True:
                    while not exhausted and not stop.is_set() and len(pending) < window_size:
                        try:
                            item = next(source)
                        except StopIteration:
                            exhausted = True
                            break
                        if item is None:  # a live source has nothing yet: process what we have
                            break
                        pending.append((seq, item, pool.submit(item.load)))
                        seq += 1
                    if pending:
                        n, item, future = pending.popleft()
                        try:
                            tensor = future.result()
                        except ImageReadError as exc:
                            with lock:
                                finished[n] = Done(item, _failure(item, exc.status, exc.message))
                        except Exception as exc:  # noqa: BLE001
                            with lock:
                                finished[n] = Done(item, _failure(item, Status.ERROR, f"{type(exc).__name__}: {exc}"))
                        else:
                            queue.start_async({0: tensor[None]}, (n, item))
                    elif exhausted or stop.is_set():
                        break
                    yield from drain()
                queue.wait_all()
                yield from drain()
            finally:
                for _, _, future in pending:
                    future.cancel()
                queue.wait_all()
                del queue  # destroy the request pool here, while nothing is in flight
