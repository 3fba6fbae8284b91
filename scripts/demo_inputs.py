#!/usr/bin/env python
"""Inputs for running the README's main command where the Hugging Face hub cannot be reached
(CI): a folder of generated photos (`IMAGES`) and a hub cache (`HF_HOME`, with
`HF_HUB_OFFLINE=1`) holding random weights for a timm model, laid out as huggingface_hub lays it
out, so `edgeclass convert` loads them through timm's real hub code.

Usage: python scripts/demo_inputs.py IMAGES_DIR HF_HOME [--images 40] [--model mobilevitv2_075.cvnets_in1k]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path


def make_hub_cache(root: Path, model_name: str = "mobilevitv2_050.cvnets_in1k", seed: int = 0) -> Path:
    """Write random weights for ``model_name`` into a hub cache under ``root`` (HF_HOME)."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model(model_name.split(".")[0], pretrained=False)
    repo = root / "hub" / f"models--timm--{model_name}"
    commit = hashlib.sha1(model_name.encode()).hexdigest()
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snap / "model.safetensors"))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", type=Path)
    ap.add_argument("hf_home", type=Path)
    ap.add_argument("--images", dest="count", type=int, default=40)
    ap.add_argument("--model", default="mobilevitv2_075.cvnets_in1k")
    args = ap.parse_args()
    import train_test_model

    per_class = max(1, args.count // len(train_test_model.CLASSES))
    train_test_model.write_images(args.images, per_class, seed=404, imagefolder=False, ext=".jpg", variant="colours")
    make_hub_cache(args.hf_home, args.model)
    print(f"{per_class * len(train_test_model.CLASSES)} images in {args.images}; hub cache in {args.hf_home}")


if __name__ == "__main__":
    main()
