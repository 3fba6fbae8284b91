"""What the benchmarks share: the repository, the CPU a figure was taken on, a free port, and the
generated inputs (images per input class, a random-weight model).

The scripts run as modules from the repository root (``python -m benchmarks.throughput``), so
``benchmarks`` and ``scripts`` (``scripts/train_test_model.py``, the test-image generator) import
as packages, with no search path set by hand.
"""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]

CLASSES = {  # name: (count, quick count, (h, w) or None for random small sizes, extension)
    "small JPEG": (1500, 400, None, ".jpg"),
    "1080p JPEG": (300, 100, (1080, 1920), ".jpg"),
    "12 MP JPEG": (60, 24, (3000, 4000), ".jpg"),
    "PNG 800x600": (300, 100, (600, 800), ".png"),
}


def sh(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_name() -> str:
    """The CPU's name, family and model, and the vector and matrix extensions that set its speed
    (from /proc/cpuinfo): to print beside every figure."""
    text = Path("/proc/cpuinfo").read_text()
    name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1).split())
    has = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile") if f in flags]
    family = re.search(r"^cpu family\s*:\s*(\d+)$", text, re.M)
    model = re.search(r"^model\s*:\s*(\d+)$", text, re.M)
    ident = f"family {family.group(1)}, model {model.group(1)}; " if family and model else ""
    return f"{name.group(1) if name else 'unknown CPU'} ({ident}{', '.join(has)})"


def make_images(folder: Path, n: int, size: tuple[int, int] | None, ext: str, seed: int) -> Path:
    """``n`` distinct images of ``size`` (height, width; None: random 256-350 px) made from
    generated pictures, once."""
    from scripts import train_test_model

    if folder.exists() and len(list(folder.glob(f"*{ext}"))) >= n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [size or (int(rng.integers(256, 351)), int(rng.integers(256, 351))) for _ in range(min(n, 40))]
    base = [train_test_model.make_image(i % 4, rng, hw) for i, hw in enumerate(sizes)]
    for i in range(n):
        img = cv2.cvtColor(np.roll(base[i % len(base)], i, axis=1), cv2.COLOR_RGB2BGR)  # distinct files
        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if ext == ".jpg" else []
        cv2.imwrite(str(folder / f"img{i:05d}{ext}"), img, params)
    return folder


def class_folder(work: Path, name: str, quick: bool = False) -> Path:
    """The images of one input class under ``work`` (made once; ``quick``: the smaller set)."""
    n, nq, size, ext = CLASSES[name]
    count = nq if quick else n
    seed = list(CLASSES).index(name) + 1
    return make_images(work / f"{name.replace(' ', '_')}_{count}", count, size, ext, seed)


def decode_jobs(folder: Path, n: int) -> list[tuple[np.ndarray, int]]:
    """(encoded bytes, OpenCV flag) for the first ``n`` images: the scale `run` decodes each at
    (JPEG DCT scaling)."""
    from edgeclass.media.imageheader import read_header
    from edgeclass.media.preprocess import PreprocessConfig, reduction_factor

    config = PreprocessConfig()
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}
    jobs = []
    for f in sorted(folder.iterdir())[:n]:
        data = f.read_bytes()
        h = read_header(data)
        factor = reduction_factor(h.height, h.width, config) if h.format == "jpeg" else 1
        jobs.append((np.frombuffer(data, np.uint8), flags[factor]))
    return jobs


def make_model(work: Path, arch: str, calibration: Path | None = None) -> Path:
    """``arch`` with random weights (speed does not depend on them), converted once into
    ``work/models/ARCH``: FP32, and INT8 calibrated on ``calibration`` where given (needs the
    convert extra: torch, timm)."""
    out = work / "models" / arch
    if (out / ("model_int8.xml" if calibration else "model_fp32.xml")).exists():
        return out
    import timm
    import torch

    from edgeclass.model.convert import ConvertOptions, convert
    from edgeclass.model.quantize import QuantizeOptions

    ckpt = work / f"{arch}.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model(arch).state_dict(), ckpt)
    quantize = QuantizeOptions(subset_size=100, max_drop=100.0, fast_bias_correction=True)
    int8 = {"calibration": calibration, "quantize": quantize} if calibration else {"int8": False}
    convert(ConvertOptions(model=arch, weights=ckpt, output=out, **int8))
    return out
