"""``--mode finetune``: fine-tune the timm model with torch on the CPU: all of it, or only its
last stages (``--train-stages N``).

Inputs are the crops the run path makes (decoded once), augmented on the fly (random resized
crop of the crop, horizontal flip, brightness/contrast jitter). Early stopping on the
held-out loss keeps the best epoch. Torch uses every CPU this process may run on.

With ``train_stages`` the stem and the earlier stages are frozen: no gradients, run under
``no_grad`` (no backward pass through them, the costly high-resolution part of MobileViTv2) and
kept in eval mode, so their BatchNorm statistics stay those of the pretrained backbone.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from edgeclass.errors import UsageError
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.model.train.options import FinetuneOptions

if TYPE_CHECKING:
    from edgeclass.model.timm_loader import TimmModel


@dataclass
class FinetuneResult:
    best_epoch: int
    epochs_run: int
    history: list[dict] = field(default_factory=list)  # per epoch: train_loss, heldout_loss, heldout_accuracy, seconds
    threads: int = 1
    trainable_params: int = 0


def to_input(batch_u8: np.ndarray | torch.Tensor, pp: PreprocessConfig) -> torch.Tensor:
    """N x H x W x 3 uint8 (the IR's input order) -> the network's normalised N x 3 x H x W float,
    as the IR does inside (channel swap, /255, mean/std)."""
    x = torch.as_tensor(batch_u8)
    if pp.swap_in_graph:
        x = x.flip(3)
    x = x.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(pp.mean).view(1, 3, 1, 1)
    std = torch.tensor(pp.std).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop (scale 0.6-1), horizontal flip, brightness/contrast jitter on N x 3 x H x W."""
    n, _, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        area = float(torch.empty(1).uniform_(0.6, 1.0, generator=gen)) * h * w
        ratio = math.exp(float(torch.empty(1).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen)))
        ch, cw = min(h, round(math.sqrt(area / ratio))), min(w, round(math.sqrt(area * ratio)))
        top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
        crop = x[i : i + 1, :, top : top + ch, left : left + cw]
        out[i] = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)[0]
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    scale = torch.empty(n, 1, 1, 1).uniform_(0.8, 1.2, generator=gen)
    shift = torch.empty(n, 1, 1, 1).uniform_(-0.1, 0.1, generator=gen)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return (out - mean) * scale + mean + shift


class StagedModel(torch.nn.Module):
    """A timm MobileViTv2 (stem, stages, final_conv, head) whose stem and first stages are frozen.

    The frozen parameters stop requiring grad (the wrapped model is changed in place: the
    optimiser gets only ``p.requires_grad`` ones); ``train()`` leaves the frozen part in eval mode.
    """

    def __init__(self, model: TimmModel, train_stages: int | None):
        super().__init__()
        check_train_stages(model, train_stages)
        self.model = model
        self.frozen_stages = 0 if train_stages is None else len(model.stages) - train_stages
        self.frozen = [model.stem, *model.stages[: self.frozen_stages]] if self.frozen_stages else []
        for module in self.frozen:
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> StagedModel:
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.frozen:
            return self.model(x)
        m = self.model
        with torch.no_grad():
            for module in self.frozen:
                x = module(x)
        for stage in m.stages[self.frozen_stages :]:
            x = stage(x)
        return m.forward_head(m.final_conv(x))


def check_train_stages(model: TimmModel, train_stages: int | None) -> None:
    """Raise :class:`UsageError` when ``train_stages`` does not fit the model (before any work)."""
    stages = len(model.stages)
    if train_stages is not None and not 1 <= train_stages <= stages:
        raise UsageError(f"--train-stages must be 1 to {stages} (the model has {stages} stages), got {train_stages}")


def heldout_logits(model: torch.nn.Module, x: torch.Tensor, batch: int = 64) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)]) if len(x) else torch.zeros(0)


def one_cycle(opt: torch.optim.Optimizer, lr: float, steps: int):
    """One-cycle schedule: warm-up over 10 % of the steps (at least 2, so short runs such as 2
    epochs of 5 batches do not divide by a zero-length warm-up), then annealing; fewer than 3
    steps: constant ``lr``."""
    if steps < 3:
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=max(0.1, 2 / steps))


def _epoch(net: torch.nn.Module, opt, sched, xt: torch.Tensor, yt: torch.Tensor, batch_size: int, gen: torch.Generator) -> float:
    """One pass over the training images in a random order, augmented; the mean training loss."""
    net.train()
    order, losses = torch.randperm(len(xt), generator=gen), []
    for i in range(0, len(xt), batch_size):
        idx = order[i : i + batch_size]
        loss = F.cross_entropy(net(augment(xt[idx], gen)), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def finetune(
    model: torch.nn.Module,
    train_x: np.ndarray,
    train_y: np.ndarray,
    held_x: np.ndarray,
    held_y: np.ndarray,
    pp: PreprocessConfig,
    options: FinetuneOptions = FinetuneOptions(),
    progress: Callable[[str], None] = lambda message: None,
) -> FinetuneResult:
    """Train ``model`` (all of it, or its last ``options.train_stages`` stages and head) in place;
    on return it holds the weights of the best held-out epoch."""
    threads = max(1, len(os.sched_getaffinity(0)))
    torch.set_num_threads(threads)
    net = StagedModel(model, options.train_stages)
    trainable = [p for p in net.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(options.seed)
    xt, yt = to_input(train_x, pp), torch.as_tensor(train_y, dtype=torch.long)
    xh, yh = to_input(held_x, pp), torch.as_tensor(held_y, dtype=torch.long)
    steps = options.epochs * math.ceil(len(xt) / options.batch_size)
    opt = torch.optim.AdamW(trainable, lr=options.lr, weight_decay=options.weight_decay)
    sched = one_cycle(opt, options.lr, steps)
    best = (math.inf, 0, copy.deepcopy(model.state_dict()))
    result = FinetuneResult(0, 0, threads=threads, trainable_params=sum(p.numel() for p in trainable))
    for epoch in range(1, options.epochs + 1):
        t0 = time.perf_counter()
        train_loss = _epoch(net, opt, sched, xt, yt, options.batch_size, gen)
        logits = heldout_logits(model, xh)
        h_loss = F.cross_entropy(logits, yh).item()
        h_acc = (logits.argmax(1) == yh).float().mean().item()
        result.history.append({"epoch": epoch, "train_loss": train_loss, "heldout_loss": h_loss, "heldout_accuracy": h_acc,
                               "seconds": round(time.perf_counter() - t0, 2)})
        progress(f"epoch {epoch}/{options.epochs}: train loss {train_loss:.3f}, held-out loss {h_loss:.3f}, accuracy {h_acc * 100:.1f}%")
        result.epochs_run = epoch
        if h_loss < best[0] - 1e-4:
            best = (h_loss, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= options.patience:
            progress(f"early stop: no better held-out loss for {options.patience} epochs (best epoch {best[1]})")
            break
    model.load_state_dict(best[2])
    model.requires_grad_(True)
    model.eval()
    result.best_epoch = best[1]
    return result


def fold_temperature(model: TimmModel, temperature: float) -> None:
    """Divide the classifier's weight and bias by ``temperature`` (logits / T)."""
    fc = model.get_classifier()
    with torch.no_grad():
        fc.weight /= temperature
        fc.bias /= temperature
