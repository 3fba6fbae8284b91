"""Both models on the same images: each file read and decoded once, pipelined like ``run``.

decode (+ each model's crop) in a thread pool -> one round-robin pool of infer requests per
model -> a :class:`Pair` per image once both answers are back. When the two models share their
preprocessing the very crop ``run`` would make (:func:`~edgeclass.media.decode.load_image_tensor`)
feeds both; when they differ, the one decoded image is cropped for each model as ``run`` would
crop it for that model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeclass.engine import Classifier, InferenceFailure, RequestPool
from edgeclass.media.decode import (
    DecodeOptions,
    ImageReadError,
    decode_bgr,
    load_image_tensor,
    prepare_array,
    read_bytes,
)
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.results import UNKNOWN_LABEL

Crops = tuple[np.ndarray, np.ndarray]  # (OLD's crop, NEW's crop) of one image


@dataclass(frozen=True)
class Item:
    """An image to compare; ``truth`` is its label folder's name (None: unlabelled)."""

    path: str
    truth: str | None = None
    targets: tuple[int | None, int | None] = (None, None)  # class id of ``truth`` in OLD, NEW


@dataclass(frozen=True)
class Answer:
    """One model's top-1 for one image, as ``run`` would write it (``unknown`` below the
    model's stored --min-score threshold; the class id and score are kept)."""

    class_id: int
    label: str
    score: float
    right: bool | None  # None: unlabelled


@dataclass(frozen=True)
class Pair:
    item: Item
    old: Answer
    new: Answer

    @property
    def flipped(self) -> bool:
        return self.old.label != self.new.label


@dataclass(frozen=True)
class Failed:
    path: str
    reason: str


def crops_loader(configs: tuple[PreprocessConfig, PreprocessConfig],
                 options: DecodeOptions) -> Callable[[str], Crops]:
    """``path -> (old crop, new crop)``: one read and one decode per file."""
    if configs[0] == configs[1]:
        config = configs[0]

        def shared(path: str) -> Crops:
            crop = load_image_tensor(path, config, options)
            return crop, crop

        return shared
    # decode for the model that needs the larger image (JPEG DCT scaling keeps its short side)
    largest = max(configs, key=lambda c: c.resize_shorter)

    def each(path: str) -> Crops:
        image = decode_bgr(read_bytes(path, options.max_bytes), largest, options)
        return prepare_array(image, configs[0]), prepare_array(image, configs[1])

    return each


def answer(classifier: Classifier, probs: np.ndarray, target: int | None, labelled: bool) -> Answer:
    probs = np.asarray(probs).reshape(-1)
    top = int(np.argmax(probs))  # the first of equal scores, as run's stable top-k
    score = float(probs[top])
    threshold = classifier.metadata.confidence_threshold
    label = UNKNOWN_LABEL if threshold and score < threshold else classifier.labels[top]
    right = (label != UNKNOWN_LABEL and top == target) if labelled else None
    return Answer(top, label, score, right)


def compare_pairs(
    old: Classifier,
    new: Classifier,
    items: Iterable[Item],
    load: Callable[[str], Crops],
    workers: int = 2,
) -> Iterator[Pair | Failed]:
    """One :class:`Pair` (or :class:`Failed`) per item, roughly in input order. Bounded: at most
    ``window`` images are being decoded or wait, and each pool's requests are in flight."""
    models = (old, new)
    pools = [RequestPool(m.compiled) for m in models]
    window = 2 * max(1, workers) + max(p.size for p in pools)
    pending: deque[tuple[int, Item, Future[Crops]]] = deque()
    halves: dict[int, list[Any]] = {}  # seq -> [item, OLD's probs, NEW's probs]
    source = iter(items)

    def arrived(k: int, done: list[tuple[Any, Any]]) -> Iterator[Pair | Failed]:
        for n, probs in done:
            slot = halves[n]
            slot[k + 1] = probs
            if slot[1] is not None and slot[2] is not None:
                del halves[n]
                yield _pair(models, slot[0], slot[1], slot[2])

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="edgeclass-compare") as decoders:
        try:
            seq = 0
            while True:
                while len(pending) < window:
                    item = next(source, None)
                    if item is None:
                        break
                    pending.append((seq, item, decoders.submit(load, item.path)))
                    seq += 1
                if not pending:
                    break
                n, item, future = pending.popleft()
                try:
                    crops = future.result()
                except ImageReadError as exc:
                    yield Failed(item.path, f"{exc.status.value}: {exc.message}")
                    continue
                except Exception as exc:  # noqa: BLE001 - a row in the report, never a crash
                    yield Failed(item.path, f"error: {type(exc).__name__}: {exc}")
                    continue
                halves[n] = [item, None, None]
                for k, (pool, crop) in enumerate(zip(pools, crops)):
                    yield from arrived(k, pool.submit(crop[None], n))
            for k, pool in enumerate(pools):
                yield from arrived(k, pool.drain())
        finally:
            for _, _, future in pending:
                future.cancel()
            for pool in pools:
                pool.drain()


def _pair(models: tuple[Classifier, Classifier], item: Item, old_probs: np.ndarray | InferenceFailure,
          new_probs: np.ndarray | InferenceFailure) -> Pair | Failed:
    if isinstance(old_probs, InferenceFailure) or isinstance(new_probs, InferenceFailure):
        failure = old_probs if isinstance(old_probs, InferenceFailure) else new_probs
        return Failed(item.path, f"error: inference failed: {failure}")
    labelled = item.truth is not None
    return Pair(item,
                answer(models[0], old_probs, item.targets[0], labelled),
                answer(models[1], new_probs, item.targets[1], labelled))
