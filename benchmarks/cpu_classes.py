#!/usr/bin/env python
"""What INT8 buys on each x86 class users own, and what `--target-cpu any` costs there.

For mobilevitv2_075 (random weights: speed does not depend on them) at 256x256, this script
makes an FP32 IR and two INT8 IRs from the same calibration images: `--target-cpu any` (7-bit
weights, edgeclass's default) and `--target-cpu vnni` (8-bit weights). It then runs
`edgeclass bench --json` (inference only, THROUGHPUT hint, all cores) on this box's own class and
again capped to each lower class (OV_CPU_MAX_ISA and ONEDNN_MAX_CPU_ISA both set: OpenVINO honours
one alone only partly), and prints images/s per class with INT8's speed-up over FP32 and the
any/vnni ratio. A capped run emulates the class's kernels on this CPU: its clock, caches and
core count stay this box's, so compare ratios, not absolute figures, with real boxes.

Usage: python -m benchmarks.cpu_classes [--work DIR] [--seconds 5] [--classes AVX512_CORE,AVX2,SSE41]
Needs the convert extra (torch, timm) the first time, to make the models.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks._common import class_folder, make_model


def models(work: Path) -> dict[str, Path]:
    """FP32 + INT8 (--target-cpu any) in one folder, INT8 (--target-cpu vnni) in a second."""
    calibration = class_folder(work, "small JPEG", quick=True)
    any_dir = make_model(work, "mobilevitv2_075", calibration)
    vnni_dir = work / "models" / "mobilevitv2_075-vnni"
    if not (vnni_dir / "model_int8.xml").exists():
        from edgeclass.model.quantize import QuantizeOptions, quantize_model_dir
        from edgeclass.modelfiles.folder import ModelDir

        vnni_dir.mkdir(parents=True, exist_ok=True)
        for f in ("model_fp32.xml", "model_fp32.bin"):
            shutil.copy(any_dir / f, vnni_dir / f)
        quantize_model_dir(ModelDir(vnni_dir), calibration, QuantizeOptions(
            subset_size=100, max_drop=100.0, max_expected_drop=100.0, fast_bias_correction=True, target_cpu="vnni"))
    return {"any": any_dir, "vnni": vnni_dir}


def bench(model_dir: Path, precisions: list[str], isa: str | None, seconds: float) -> dict[str, float]:
    env = {**os.environ, **({"OV_CPU_MAX_ISA": isa, "ONEDNN_MAX_CPU_ISA": isa} if isa else {})}
    args = [sys.executable, "-m", "edgeclass", "bench", "--model", str(model_dir), "--json", "--seconds", str(seconds)]
    for p in precisions:
        args += ["--precision", p]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    return {r["precision"]: r["throughput"] for r in report["results"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeclass-bench"))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--classes", default="AVX512_CORE,AVX2,SSE41", help="lower classes to emulate, comma-separated")
    args = ap.parse_args()
    from edgeclass.cpuclass import detect

    dirs = models(args.work)
    print(f"CPU: {detect().describe()}, {os.cpu_count()} cores; mobilevitv2_075 256x256, edgeclass bench "
          f"(THROUGHPUT hint, {args.seconds:g} s per precision)\n")
    print("| class | FP32 (f32) img/s | INT8 any img/s | INT8 vnni img/s | INT8 any / FP32 | any / vnni |")
    print("|---|---|---|---|---|---|")
    for isa in [None, *[c for c in args.classes.split(",") if c]]:
        name = isa or f"native ({detect().name})"
        fp = bench(dirs["any"], ["fp32", "int8"], isa, args.seconds)
        vnni = bench(dirs["vnni"], ["int8"], isa, args.seconds)["int8"]
        print(f"| {name} | {fp['fp32']:.1f} | {fp['int8']:.1f} | {vnni:.1f} | {fp['int8'] / fp['fp32']:.2f}x | "
              f"{fp['int8'] / vnni:.2f} |", flush=True)


if __name__ == "__main__":
    main()
