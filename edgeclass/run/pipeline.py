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
        pool = RequestPool(self.classifier.compiled, self.requests)
        usage = self.classifier.usage
        started = time.perf_counter()
        window_size = 2 * self.workers + pool.size
        finished: dict[int, Done] = {}
        pending: deque[tuple[int, WorkItem, Future]] = deque()
        source = iter(items)
        next_out = 0
        seq = 0
        exhausted = False

        def record(results: list) -> None:
            for (n, item), probs in results:
                try:
                    preds = self.classifier.predictions(probs, self.top_k)
                    result = Result(item.source, Status.OK, "", preds, item.frame, item.timestamp_ms)
                except Exception as exc:  # noqa: BLE001 - becomes a row, never a crash
                    result = _failure(item, Status.ERROR, f"inference failed: {exc}")
                finished[n] = Done(item, result)

        def drain() -> Iterator[Done]:
            nonlocal next_out
            while next_out in finished:
                yield finished.pop(next_out)
                next_out += 1

        with ThreadPoolExecutor(self.workers, thread_name_prefix="edgeclass-decode") as decoders:
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
                        pending.append((seq, item, decoders.submit(item.load)))
                        seq += 1
                    if pending:
                        n, item, future = pending.popleft()
                        t0 = time.perf_counter()
                        try:
                            tensor = future.result()
                        except ImageReadError as exc:
                            finished[n] = Done(item, _failure(item, exc.status, exc.message))
                        except Exception as exc:  # noqa: BLE001
                            finished[n] = Done(item, _failure(item, Status.ERROR, f"{type(exc).__name__}: {exc}"))
                        else:
                            usage.input_wait_s += time.perf_counter() - t0
                            usage.images += 1
                            record(pool.submit(tensor[None], (n, item)))
                    elif exhausted or stop.is_set():
                        break
                    else:
                        record(pool.drain())  # idle live source: finish what is in flight
                    yield from drain()
                record(pool.drain())
                yield from drain()
            finally:
                for _, _, future in pending:
                    future.cancel()
                pool.drain()
                usage.wall_s += time.perf_counter() - started
                usage.inference_wait_s += pool.wait_s
