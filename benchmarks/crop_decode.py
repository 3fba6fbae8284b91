#!/usr/bin/env python
"""What decoding only the region the centre crop reads would save, per JPEG.

`run` decodes a large JPEG at a DCT scale (1/2 for 1080p) and then resamples only the input
lines the crop's outputs read (edgeclass.media.resample.axis_plan: for 1080p about half the
columns and nine tenths of the rows). libjpeg-turbo can skip the rest itself
(``jpeg_crop_scanline`` + ``jpeg_skip_scanlines``) but neither OpenCV nor Pillow exposes it, so
this script asks libjpeg-turbo's own command-line decoder (``djpeg``, Debian package
libjpeg-turbo-progs) at the same scale, whole image against the crop's region (``-crop``), for
the first ``--images`` images of a class. CPU seconds of the child processes (``getrusage``),
``--runs`` decodes per image and variant, minus a process that decodes an 8x8 corner (start-up
and reading the file). A ceiling for what native crop decoding could give `run`: the entropy
decoding of every block is still paid (JPEG's Huffman data is sequential), only the inverse
DCT, upsampling and colour conversion of the skipped blocks are saved.

Usage: python benchmarks/crop_decode.py [--class "1080p JPEG"] [--images 5] [--runs 40] [--work DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
from pathlib import Path

import throughput  # benchmarks/throughput.py: the images
from edgeclass.media.imageheader import read_header
from edgeclass.media.preprocess import PreprocessConfig, center_crop_offsets, reduction_factor, resized_size
from edgeclass.media.resample import axis_plan


def region(path: Path, config: PreprocessConfig) -> tuple[int, str]:
    """(DCT scale denominator, djpeg's ``-crop WxH+X+Y``) for the lines `run` resamples."""
    header = read_header(path.read_bytes())
    factor = reduction_factor(header.height, header.width, config)
    h, w = -(-header.height // factor), -(-header.width // factor)
    out_h, out_w = resized_size(h, w, config.resize_shorter)
    crop_h, crop_w = config.input_size
    top, left = center_crop_offsets(out_h, out_w, crop_h, crop_w)
    x0, x1 = axis_plan(w, out_w, left, crop_w, config.interpolation).lines if w != out_w else (left, left + crop_w)
    y0, y1 = axis_plan(h, out_h, top, crop_h, config.interpolation).lines if h != out_h else (top, top + crop_h)
    return factor, f"{x1 - x0}x{y1 - y0}+{x0}+{y0}"


def child_cpu_ms(args: list[str], runs: int) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / runs * 1e3


def measure(path: Path, runs: int, config: PreprocessConfig) -> tuple[float, float]:
    """(whole image, crop region) decode CPU ms, the start-up baseline subtracted."""
    factor, crop = region(path, config)
    base = ["djpeg", "-ppm", "-scale", f"1/{factor}", "-outfile", "/dev/null"]
    empty = child_cpu_ms(["djpeg", "-ppm", "-scale", "1/8", "-crop", "8x8+0+0", "-outfile", "/dev/null", str(path)], runs)
    whole = child_cpu_ms(base + [str(path)], runs) - empty
    cropped = child_cpu_ms(base[:-2] + ["-crop", crop, "-outfile", "/dev/null", str(path)], runs) - empty
    return whole, cropped


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--class", dest="klass", default="1080p JPEG", choices=[c for c in throughput.CLASSES if "JPEG" in c])
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeclass-bench"))
    args = ap.parse_args()
    if not shutil.which("djpeg"):
        raise SystemExit("djpeg not found (Debian: apt-get install libjpeg-turbo-progs)")
    config = PreprocessConfig()
    folder = throughput.class_folder(args.work, args.klass)
    paths = sorted(folder.iterdir())[: args.images]
    print(subprocess.run(["djpeg", "-version"], capture_output=True, text=True).stderr.strip().splitlines()[0])
    ratios = []
    for path in paths:
        whole, cropped = measure(path, args.runs, config)
        ratios.append(cropped / whole)
        print(f"  {path.name}: -crop {region(path, config)[1]}: whole {whole:.2f} ms, crop region {cropped:.2f} ms, "
              f"ratio {cropped / whole:.2f}")
    print(f"{args.klass}: decoding only the crop's region costs {statistics.median(ratios):.2f} of the whole "
          f"decode at the same scale (median of {len(ratios)} images)")


if __name__ == "__main__":
    main()
