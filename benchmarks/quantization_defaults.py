#!/usr/bin/env python
"""Measure NNCF options on the trained test model, to choose edgeclass's quantization defaults.

Trains (or reuses) the 4-class test model from scripts/train_test_model.py, converts it to
FP32, then quantizes it with each combination of model type, bias correction and preset,
and prints FP32/INT8 top-1 on a labelled held-out set, agreement, mean |Δp| and time.

Usage: python benchmarks/quantization_defaults.py [--work DIR] [--val-per-class 100]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import train_test_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeclass-qdefaults"))
    ap.add_argument("--calib-per-class", type=int, default=40)
    ap.add_argument("--val-per-class", type=int, default=100)
    args = ap.parse_args()

    import openvino as ov

    from edgeclass.model.calibration import list_images, load_set
    from edgeclass.model.convert import ConvertOptions, convert
    from edgeclass.model.evaluate import compare, predict_all
    from edgeclass.model.modeldir import ModelDir
    from edgeclass.model.modelinfo import read_metadata
    from edgeclass.model.quantize import QuantizeOptions, quantize_model_dir

    work = args.work
    trained = work / "trained"
    if not (trained / "train_info.json").exists():
        train_test_model.train(trained)
    calib, val = work / "calib", work / "val"
    if not calib.exists():
        train_test_model.write_images(calib, args.calib_per_class, seed=101)
        train_test_model.write_images(val, args.val_per_class, seed=202)
    base = work / "fp32"
    if not (base / "model_fp32.xml").exists():
        convert(ConvertOptions(model="mobilevitv2_050", weights=trained / "checkpoint.safetensors",
                               labels=trained / "labels.txt", output=base, input_size=train_test_model.TRAIN_SIZE,
                               crop_pct=0.875, int8=False))
    core = ov.Core()
    meta = read_metadata(core.read_model(base / "model_fp32.xml"))
    images = load_set(list_images(val), meta.preprocess, val, meta.labels)
    fp32 = predict_all(core.compile_model(base / "model_fp32.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), images.tensors)

    rows = []
    for model_type, fast, preset in itertools.product(("transformer", "cnn"), (True, False), ("mixed", "performance")):
        md = work / f"q-{model_type}-{'fast' if fast else 'full'}-{preset}"
        shutil.rmtree(md, ignore_errors=True)
        md.mkdir(parents=True)
        for f in ("model_fp32.xml", "model_fp32.bin"):
            shutil.copy(base / f, md / f)
        opts = QuantizeOptions(model_type=model_type, fast_bias_correction=fast, preset=preset, max_drop=1.0,
                               validation=val, accuracy_control=False)
        t0 = time.perf_counter()
        quantize_model_dir(ModelDir(md), calib, opts)
        seconds = time.perf_counter() - t0
        int8 = predict_all(core.compile_model(md / "model_int8.xml", "CPU"), images.tensors)
        a = compare(fp32, int8, images, "validation")
        rows.append((model_type, "fast" if fast else "full", preset, a, seconds))

    print(f"\n{len(images)} labelled held-out images; FP32 top-1 {rows[0][3].fp32_top1 * 100:.2f}%")
    print(f"{'model type':12} {'bias corr':9} {'preset':12} {'INT8 top-1':>10} {'drop pt':>8} {'agree':>7} {'mean|dp|':>9} {'time s':>7}")
    for model_type, bias, preset, a, seconds in rows:
        print(f"{model_type:12} {bias:9} {preset:12} {a.int8_top1 * 100:9.2f}% {a.drop * 100:8.2f} "
              f"{a.top1_agreement * 100:6.1f}% {a.mean_abs_prob_diff:9.5f} {seconds:7.1f}")


if __name__ == "__main__":
    main()
