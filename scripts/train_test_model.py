#!/usr/bin/env python
"""Train a small MobileViTv2 on generated images: a test model with real structure.

Random-init weights give near-uniform outputs, which hides preprocessing and quantization
errors. This script generates a 4-class task (circle / square / triangle / stripes, random
colours, sizes, rotations, textured backgrounds, distractors and noise), trains
``mobilevitv2_050`` on CPU for a fixed number of steps (deterministic), and writes:

* ``checkpoint.safetensors`` (a timm state dict with a 4-class head)
* ``labels.txt``
* ``train_info.json`` (steps, seconds, held-out accuracy)

Usage: ``python scripts/train_test_model.py OUT_DIR [--steps 400] [--size 64]``

The image generator is also used by the tests to make calibration, validation and run images.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("circle", "square", "triangle", "stripes")
TRAIN_SIZE = 64  # input size the test model is trained and converted at (keeps CI fast)


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


# Each class leans to a hue, so a briefly trained model gets a useful cue quickly; the other
# images need the shape itself. Two variants (two test models that behave like real ones):
# "shapes": 70 % of images carry the class hue, stripes any colour: a hard task (~73 % top-1).
# "colours": every image carries its class hue (stripes purple), never inverted against the
# background: a confident, accurate model (>= 95 %).
VARIANTS = {
    "shapes": {"colour_cue": 0.7, "hues": (0, 60, 120, None), "invert": True},  # OpenCV hue (0-180)
    "colours": {"colour_cue": 1.0, "hues": (0, 60, 120, 150), "invert": False},
}


def _class_colour(label: int, rng: np.random.Generator, variant: str = "shapes") -> tuple[int, int, int]:
    hue = VARIANTS[variant]["hues"][label]
    if hue is None or rng.random() < 1 - VARIANTS[variant]["colour_cue"]:
        return _random_colour(rng)
    hsv = np.uint8([[[(hue + rng.integers(-12, 13)) % 180, rng.integers(150, 256), rng.integers(120, 256)]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = np.array(_random_colour(rng), np.float32)
    grad = np.linspace(0, 1, w, dtype=np.float32)[None, :, None] * rng.normal(0, 30, 3).astype(np.float32)
    noise = cv2.GaussianBlur(rng.normal(0, 20, (h, w, 3)).astype(np.float32), (0, 0), rng.uniform(1, 4))
    return np.clip(base + grad + noise, 0, 255)


def make_image(label: int, rng: np.random.Generator, size: tuple[int, int] | None = None,
               variant: str = "shapes") -> np.ndarray:
    """One RGB ``uint8`` image of class ``label`` (index into CLASSES)."""
    if size is None:
        h, w = int(rng.integers(80, 220)), int(rng.integers(80, 220))
    else:
        h, w = size
    img = _background(rng, h, w)
    short = min(h, w)
    r = rng.uniform(0.28, 0.42) * short
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    fg = _class_colour(label, rng, variant)
    # keep the shape visible against the background
    if VARIANTS[variant]["invert"] and np.abs(np.array(fg) - img[int(cy), int(cx)]).sum() < 120:
        fg = tuple(int(255 - c) for c in fg)
    angle = rng.uniform(0, 2 * math.pi)
    scale = 16  # draw with sub-pixel precision (shift=4)
    if label == 0:
        cv2.circle(img, (int(cx * scale), int(cy * scale)), int(r * scale), fg, -1, cv2.LINE_AA, 4)
    elif label in (1, 2):
        n = 4 if label == 1 else 3
        pts = np.array(
            [[cx + r * math.cos(angle + 2 * math.pi * k / n), cy + r * math.sin(angle + 2 * math.pi * k / n)] for k in range(n)]
        )
        cv2.fillPoly(img, [np.round(pts * scale).astype(np.int32)], fg, cv2.LINE_AA, 4)
    else:
        period = rng.uniform(5, 12)
        thick = max(1, int(period / 2.5))
        d = np.array([math.cos(angle), math.sin(angle)])
        nrm = np.array([-d[1], d[0]])
        for k in range(-int(r / period), int(r / period) + 1):
            c = np.array([cx, cy]) + nrm * k * period
            p0, p1 = c - d * r, c + d * r
            cv2.line(img, tuple(np.round(p0).astype(int)), tuple(np.round(p1).astype(int)), fg, thick, cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 2))):  # distractors
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p0, p1, _random_colour(rng), int(rng.integers(1, 3)), cv2.LINE_AA)
    img += rng.normal(0, rng.uniform(2, 10), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_images(folder: Path, per_class: int, seed: int, imagefolder: bool = True, ext: str = ".png",
                 size: tuple[int, int] | None = None, variant: str = "shapes") -> list[tuple[Path, int]]:
    """Write ``per_class`` images per class (ImageFolder layout when ``imagefolder``)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(per_class):
        for label, name in enumerate(CLASSES):
            sub = folder / name if imagefolder else folder
            sub.mkdir(parents=True, exist_ok=True)
            path = sub / f"{name}_{seed}_{i:04d}{ext}"
            cv2.imwrite(str(path), cv2.cvtColor(make_image(label, rng, size, variant), cv2.COLOR_RGB2BGR))
            out.append((path, label))
    return out


def _batch(rng: np.random.Generator, n: int, pp, variant: str = "shapes"):
    from edgeclass.media.preprocess import resize_and_crop

    labels = rng.integers(0, len(CLASSES), n)
    xs = np.stack([resize_and_crop(make_image(int(y), rng, variant=variant), pp) for y in labels])
    return xs, labels


def train(out_dir: Path, steps: int = 400, size: int = TRAIN_SIZE, seed: int = 0, batch: int = 32,
          variant: str = "shapes", threads: int | None = None) -> dict:
    """Train one test model into ``out_dir``; ``threads``: torch's threads (default: every CPU)."""
    import timm
    import torch
    from safetensors.torch import save_file

    from edgeclass.media.preprocess import PreprocessConfig

    torch.manual_seed(seed)
    torch.set_num_threads(threads or max(1, len(__import__("os").sched_getaffinity(0))))
    pp = PreprocessConfig(input_size=(size, size), crop_pct=0.875)
    model = timm.create_model("mobilevitv2_050", num_classes=len(CLASSES))
    opt = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.02)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps, pct_start=0.15)
    rng = np.random.default_rng(seed)
    started = time.time()
    model.train()
    for step in range(steps):
        xs, ys = _batch(rng, batch, pp, variant)
        x = torch.from_numpy(xs).permute(0, 3, 1, 2).float() / 255.0
        loss = torch.nn.functional.cross_entropy(model(x), torch.from_numpy(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 20 == 0:
            print(f"step {step}/{steps} loss {loss.item():.3f} ({time.time() - started:.0f}s)", flush=True)
    model.eval()
    val_rng = np.random.default_rng(seed + 10_000)
    xs, ys = _batch(val_rng, 256, pp, variant)
    with torch.no_grad():
        pred = model(torch.from_numpy(xs).permute(0, 3, 1, 2).float() / 255.0).argmax(1).numpy()
    accuracy = float((pred == ys).mean())
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / "checkpoint.safetensors"))
    (out_dir / "labels.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    info = {"variant": variant, "steps": steps, "size": size, "seconds": round(time.time() - started, 1), "heldout_accuracy": accuracy}
    (out_dir / "train_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--size", type=int, default=TRAIN_SIZE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="shapes")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: every CPU)")
    args = ap.parse_args()
    print(json.dumps(train(args.out_dir, args.steps, args.size, args.seed, variant=args.variant,
                           threads=args.threads), indent=2))


if __name__ == "__main__":
    main()
