#!/usr/bin/env python
"""`edgeclass train --mode probe` end to end, and its head against the same head in PyTorch.

1. Generates an ImageFolder dataset: 3 classes x ``--per-class`` images (default 200: 600
   images, photo-like sizes 80-220 px; every 3rd image drawn so only its shape tells).
2. Runs :func:`edgeclass.model.train.trainer.train` (the `edgeclass train` library call) and
   prints the seconds of each stage (backbone load and export, features, head, temperature,
   save, INT8 with the gate, held-out evaluation, report) and the total.
3. On the same backbone features (same IR, same decode path, same split) trains the linear
   head two ways: scikit-learn's logistic regression (what `train` uses) and a PyTorch
   ``nn.Linear`` with cross-entropy (Adam, full batch, weight decay, standardised inputs,
   like a typical hand-written probe), and prints held-out accuracy and NLL of both.

Default backbone: mobilevitv2_075 at 256 px with random weights (the hub is unreachable here:
the compute, hence the time, is that of the real model). ``--weights FILE --model NAME
--input-size N`` uses a checkpoint instead (e.g. the accurate test model, for accuracy).

Random weights quantize badly (INT8 loses ~7 points here), so with the default ``--max-drop 1``
the gate starts NNCF's accuracy control (ranking every quantized op: many minutes on 2 cores);
``--max-drop 10`` times the plain INT8 path a trained backbone takes.

4. With ``--finetune-epochs N``: ``--mode finetune`` for N epochs on the same split, the whole
   network and then only its last 3, 2 and 1 stages (``--train-stages``): seconds per epoch,
   trainable parameters and held-out accuracy of each.

Usage: ``python -m benchmarks.train [--per-class 200] [--max-drop 1] [--weights F --model M --input-size N]
[--finetune-epochs 2] [--skip-probe] [--dataset DIR]``

``--dataset DIR`` times your own ImageFolder dataset (read only) instead of the generated one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from scripts import train_test_model as ttm

CLASSES = ("circle", "square", "triangle")


def make_dataset(root: Path, per_class: int, seed: int = 5) -> None:
    rng = np.random.default_rng(seed)
    for i in range(per_class):
        for label, name in enumerate(CLASSES):
            (root / name).mkdir(parents=True, exist_ok=True)
            image = ttm.make_image(label, rng, None, variant="shapes" if i % 3 == 0 else "colours")
            cv2.imwrite(str(root / name / f"{i:04d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def end_to_end(args, dataset: Path, out: Path) -> dict:
    from edgeclass.model.train.options import TrainOptions
    from edgeclass.model.train.trainer import train

    options = TrainOptions(dataset=dataset, model=args.model, weights=args.weights, random_init=args.weights is None,
                           input_size=args.input_size, output=out, max_drop=args.max_drop / 100)
    t0 = time.perf_counter()
    report = train(options)
    total = time.perf_counter() - t0
    print(f"\n== edgeclass train (probe) on {sum(report.report['counts']['train'].values()) + sum(report.report['counts']['heldout'].values())} images, "
          f"{len(report.report['labels'])} classes, {len(os.sched_getaffinity(0))} cores, "
          f"{args.model} {'random-init' if args.weights is None else args.weights.name}")
    for stage, seconds in report.seconds.items():
        print(f"  {stage:<10} {seconds:7.1f} s")
    print(f"  {'total':<10} {total:7.1f} s   (goal <= 120 s; load average now {os.getloadavg()[0]:.1f})")
    gate = report.report["int8"] or {}
    print(f"  INT8 kept: {gate.get('kept')} ({gate.get('method')}); held-out accuracy {report.report['heldout']['accuracy'] * 100:.1f}% "
          f"({report.report['evaluated_precision']}); temperature {report.report['calibration']['temperature']:.3f}")
    return report.report


def same_features(args, dataset: Path):
    """Backbone features of the split `train` uses, through the library's own pieces."""
    from edgeclass.model.export import torch_to_ov
    from edgeclass.model.train.backbone import load_backbone
    from edgeclass.model.train.dataset import scan
    from edgeclass.model.train.features import compile_f32, run_over
    from edgeclass.model.train.graft import features_model

    ds = scan(dataset)
    bb = load_backbone(args.model, args.weights, args.weights is None, 0, args.input_size)
    compiled = compile_f32(features_model(torch_to_ov(bb.model, bb.preprocess)))
    tr = run_over(compiled, [s.path for s in ds.train], bb.preprocess)
    he = run_over(compiled, [s.path for s in ds.heldout], bb.preprocess)
    target = {s.path: s.target for s in ds.train + ds.heldout}
    return tr.values, np.array([target[p] for p in tr.paths]), he.values, np.array([target[p] for p in he.paths])


def torch_head(x_tr, y_tr, x_he, epochs: int = 500, weight_decay: float = 1e-3) -> np.ndarray:
    import torch

    torch.manual_seed(0)
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
    xt = torch.as_tensor((x_tr - mean) / std, dtype=torch.float32)
    xh = torch.as_tensor((x_he - mean) / std, dtype=torch.float32)
    yt = torch.as_tensor(y_tr)
    linear = torch.nn.Linear(xt.shape[1], int(y_tr.max()) + 1)
    opt = torch.optim.Adam(linear.parameters(), lr=1e-2, weight_decay=weight_decay)
    for _ in range(epochs):
        loss = torch.nn.functional.cross_entropy(linear(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return linear(xh).numpy().astype(np.float64)


def compare_heads(args, dataset: Path) -> None:
    from edgeclass.model.train import head as heads

    x_tr, y_tr, x_he, y_he = same_features(args, dataset)
    t0 = time.perf_counter()
    sk = heads.fit_logistic(x_tr, y_tr, int(y_tr.max()) + 1).logits(x_he).astype(np.float64)
    t_sk = time.perf_counter() - t0
    t0 = time.perf_counter()
    pt = torch_head(x_tr, y_tr, x_he)
    t_pt = time.perf_counter() - t0
    print(f"\n== linear head on the same {x_tr.shape[0]} x {x_tr.shape[1]} features, {len(y_he)} held-out images")
    for name, logits, seconds in (("scikit-learn LogisticRegression (train)", sk, t_sk),
                                  ("PyTorch nn.Linear, Adam 500 full-batch epochs", pt, t_pt)):
        acc = (logits.argmax(1) == y_he).mean()
        print(f"  {name:<48} accuracy {acc * 100:5.1f}%  NLL {heads.nll(logits, y_he):.3f}  fit {seconds:.2f} s")
    print(f"  accuracy ratio sklearn / torch: {(sk.argmax(1) == y_he).mean() / max((pt.argmax(1) == y_he).mean(), 1e-9):.3f}")


def finetune_stages(args, dataset: Path) -> None:
    from edgeclass.model.train.backbone import load_backbone
    from edgeclass.model.train.dataset import scan
    from edgeclass.model.train.features import decode_all
    from edgeclass.model.train.finetune import finetune
    from edgeclass.model.train.options import FinetuneOptions

    ds = scan(dataset)
    target = {s.path: s.target for s in ds.train + ds.heldout}
    print(f"\n== finetune, {args.finetune_epochs} epochs on {len(ds.train)} images ({len(ds.heldout)} held out), "
          f"{args.model} {'random-init' if args.weights is None else args.weights.name}")
    for stages in (None, 3, 2, 1):
        bb = load_backbone(args.model, args.weights, args.weights is None, len(ds.labels), args.input_size)
        tr_paths, tr_x, _ = decode_all([s.path for s in ds.train], bb.preprocess)
        he_paths, he_x, _ = decode_all([s.path for s in ds.heldout], bb.preprocess)
        result = finetune(bb.model, np.stack(tr_x), np.array([target[p] for p in tr_paths]), np.stack(he_x),
                          np.array([target[p] for p in he_paths]), bb.preprocess,
                          FinetuneOptions(epochs=args.finetune_epochs, patience=args.finetune_epochs, train_stages=stages))
        seconds = [h["seconds"] for h in result.history]
        print(f"  {'whole network' if stages is None else f'--train-stages {stages}':<18} "
              f"{result.trainable_params / 1e6:5.2f} M trainable  s/epoch {' '.join(f'{x:.1f}' for x in seconds)}  "
              f"held-out accuracy {result.history[-1]['heldout_accuracy'] * 100:.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--model", default="mobilevitv2_075.cvnets_in1k")
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--max-drop", type=float, default=1.0, help="INT8 gate limit in points (as `train --max-drop`)")
    ap.add_argument("--finetune-epochs", type=int, default=0, help="also time --mode finetune per --train-stages")
    ap.add_argument("--skip-probe", action="store_true", help="skip the probe end to end and the head comparison")
    ap.add_argument("--dataset", type=Path, default=None, help="an ImageFolder dataset instead of the generated one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgeclass-bench-train-") as tmp:
        dataset = args.dataset or Path(tmp) / "dataset"
        if args.dataset is None:
            make_dataset(dataset, args.per_class)
        if not args.skip_probe:
            end_to_end(args, dataset, Path(tmp) / "model")
            compare_heads(args, dataset)
        if args.finetune_epochs:
            finetune_stages(args, dataset)


if __name__ == "__main__":
    main()
