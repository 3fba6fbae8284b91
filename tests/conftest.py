"""Shared fixtures: every model, checkpoint, hub cache and image is made here, offline."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import train_test_model  # noqa: E402  (scripts/ is not a package)

CACHE = Path(os.environ.get("EDGECLASS_TEST_CACHE", REPO / "tests" / ".cache"))


def run_cli(*args: str, env: dict | None = None, stdin: str | None = None, cwd: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """The real command in a subprocess (``python -m edgeclass``)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "edgeclass", *args],
        input=stdin,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def read_with_pandas(path: Path, fmt: str, top_k: int):
    """An output file read by pandas as users read it (CSV cells as text, empty = missing), its
    columns checked against the header of ``top_k`` predictions."""
    import pandas as pd

    from edgeclass.run.output.columns import header

    if fmt == "csv":
        df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    elif fmt == "jsonl":
        df = pd.read_json(path, lines=True, convert_dates=False, dtype=False)
    else:
        df = pd.read_parquet(path)
    assert list(df.columns) == header(top_k)
    return df


def read_csv(path_or_text) -> list[dict]:
    import csv
    import io

    text = Path(path_or_text).read_text(encoding="utf-8", errors="surrogateescape") if isinstance(path_or_text, Path) else path_or_text
    return list(csv.DictReader(io.StringIO(text)))


# The test models: 4-class mobilevitv2_050s trained once by scripts/train_test_model.py (400
# steps, one torch thread) and committed, so every CPU class tests the same bytes (training at
# test time gave a different model on AVX2 than on AVX-512 kernels, and cost ~5 min of CI).
FIXTURES = REPO / "tests" / "fixtures" / "models"
FIXTURE_SHA256 = {
    "shapes": "b82759717e83f924f342af91a5ff24e2fbd76ddf6d74a7fa8cee48b6b0d642cb",
    "colours": "229bd1d458b02f9bb9825d63adec8b46d19952d286eae93bac93964803c02ebe",
}


def fixture_model(variant: str) -> Path:
    """The committed test model ``variant``, its checkpoint checked against the pinned sha256."""
    out = FIXTURES / variant
    checkpoint = out / "checkpoint.safetensors"
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest() if checkpoint.is_file() else "missing"
    if digest != FIXTURE_SHA256[variant]:
        raise RuntimeError(
            f"{checkpoint}: sha256 {digest} is not the pinned {FIXTURE_SHA256[variant]} (tests/conftest.py). "
            f"Regenerate it with `python scripts/train_test_model.py tests/fixtures/models/{variant} --variant {variant} "
            "--steps 400 --threads 1` and pin the new hash, or restore the file with `git checkout`.")
    return out


def _cache_key(*parts: bytes) -> str:
    """What decides a built test model: edgeclass's own sources, the image generator, the
    packages' versions and the CPU cap in force (a cache must never hide what a fresh clone builds)."""
    from importlib.metadata import version

    sources = sorted((REPO / "edgeclass").rglob("*.py")) + sorted((REPO / "edgeclass").rglob("*.c"))
    sources.append(REPO / "scripts" / "train_test_model.py")
    h = hashlib.sha256(b"".join(parts))
    for f in sources:
        h.update(f.read_bytes())
    h.update(" ".join(version(p) for p in ("openvino", "nncf", "torch", "timm")).encode())
    h.update(f"{os.environ.get('OV_CPU_MAX_ISA')}/{os.environ.get('ONEDNN_MAX_CPU_ISA')}".encode())
    return h.hexdigest()[:16]


def built_once(name: str, key: str, build, dest: Path) -> Path:
    """``build(folder)`` once for every pytest worker (cached under tests/.cache by ``key``, under
    a lock), then copied to ``dest``: each worker gets its own copy to write next to."""
    cached = CACHE / f"{name}-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cached / ".complete").exists():
            shutil.rmtree(cached, ignore_errors=True)
            build(cached)
            (cached / ".complete").touch()
    shutil.copytree(cached, dest, ignore=shutil.ignore_patterns(".complete"))
    return dest


# The end-to-end files with the longest serial wall time first (2 cores, 2026-11-30): in two
# workers (`-n 2 --dist loadfile`) files are handed out in collection order, so the long ones
# start early instead of ending the run alone on one worker.
LONGEST_FIRST = ("test_accuracy.py", "test_int8_gate.py", "test_ray.py", "test_train.py", "test_video.py",
                 "test_model_updates.py", "test_convert.py", "test_quantize.py", "test_live_failures.py",
                 "test_faults.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order kept


@pytest.fixture(scope="session")
def trained_dir() -> Path:
    """The hard test model ("shapes": ~73 % held-out top-1, many borderline images)."""
    return fixture_model("shapes")


@pytest.fixture(scope="session")
def accurate_dir() -> Path:
    """The confident, accurate test model ("colours": >= 95 % held-out top-1)."""
    return fixture_model("colours")


@pytest.fixture(scope="session")
def train_info(trained_dir: Path) -> dict:
    return json.loads((trained_dir / "train_info.json").read_text())


@pytest.fixture(scope="session")
def image_sets(tmp_path_factory) -> dict[str, Path]:
    """Generated calibration (ImageFolder), validation (ImageFolder) and run folders."""
    root = tmp_path_factory.mktemp("images")
    train_test_model.write_images(root / "calibration", per_class=40, seed=101)
    train_test_model.write_images(root / "validation", per_class=50, seed=202)
    train_test_model.write_images(root / "run", per_class=3, seed=303, imagefolder=False, ext=".jpg")
    return {"calibration": root / "calibration", "validation": root / "validation", "run": root / "run"}


@pytest.fixture(scope="session")
def trained_model_dir(trained_dir: Path, image_sets, tmp_path_factory) -> Path:
    """The trained checkpoint converted (FP32) and quantized (INT8) with default settings."""
    from edgeclass.model.convert import ConvertOptions, convert
    from edgeclass.model.quantize import QuantizeOptions

    def build(out: Path) -> None:
        convert(
            ConvertOptions(
                model="mobilevitv2_050",
                weights=trained_dir / "checkpoint.safetensors",
                labels=trained_dir / "labels.txt",
                output=out,
                input_size=train_test_model.TRAIN_SIZE,
                crop_pct=0.875,
                calibration=image_sets["calibration"],
                quantize=QuantizeOptions(validation=image_sets["validation"]),
            )
        )

    key = _cache_key(FIXTURE_SHA256["shapes"].encode(), b"trained_model_dir")
    return built_once("shapes-model", key, build, tmp_path_factory.mktemp("models") / "shapes")


def fp32_only_copy(model_dir: Path, dest: Path) -> Path:
    """A model folder holding only the FP32 IR of ``model_dir`` (to quantize it again)."""
    dest.mkdir(parents=True)
    for f in ("model_fp32.xml", "model_fp32.bin"):
        shutil.copy(model_dir / f, dest / f)
    return dest


def make_hub_cache(root: Path, model_name: str = "mobilevitv2_050.cvnets_in1k", seed: int = 0) -> Path:
    """Write weights we make into a Hugging Face hub cache laid out as huggingface_hub does,
    so ``timm.create_model(..., pretrained=True)`` loads them through its real hub path."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    arch = model_name.split(".")[0]
    model = timm.create_model(arch, pretrained=False)
    repo = root / "hub" / f"models--timm--{model_name}"
    commit = hashlib.sha1(model_name.encode()).hexdigest()
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snap / "model.safetensors"))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return root


@pytest.fixture(scope="session")
def hub_home(tmp_path_factory) -> Path:
    return make_hub_cache(tmp_path_factory.mktemp("hf_home"))


@pytest.fixture
def offline_env(hub_home: Path) -> dict:
    return {"HF_HOME": str(hub_home), "HF_HUB_OFFLINE": "1"}


def synthetic_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A natural-looking RGB image (smooth regions, edges, texture) of any size."""
    rng = np.random.default_rng(seed)
    return train_test_model.make_image(int(rng.integers(0, 4)), rng, (h, w))
