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

TRAIN_STEPS = int(os.environ.get("EDGECLASS_TEST_TRAIN_STEPS", "400"))
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


def _model_cache(variant: str) -> Path:
    """Where a test model is cached, by what decides its weights: the training script, the
    preprocessing it trains through, torch and timm versions (training is deterministic on one
    machine; a stale cache would hide what a fresh clone trains)."""
    from importlib.metadata import version

    sources = [REPO / "scripts" / "train_test_model.py", REPO / "edgeclass" / "media" / "preprocess.py",
               REPO / "edgeclass" / "media" / "resample.py", REPO / "edgeclass" / "media" / "_resample.c",
               REPO / "edgeclass" / "modelfiles" / "preprocessing.py"]
    key = b"".join(f.read_bytes() for f in sources) + f"{TRAIN_STEPS}/{variant}/{version('torch')}/{version('timm')}".encode()
    return CACHE / f"trained-{variant}-{hashlib.sha256(key).hexdigest()[:12]}"


_TRAINING: dict[str, subprocess.Popen] = {}  # variant -> its training process (started, not yet collected)


def _start_training() -> None:
    """Train every missing test model at once, one process and one torch thread each: small
    batches scale poorly over threads, so on 2 cores the two models take about as long as one
    (1.6x faster than one after the other with 2 threads each)."""
    for variant in train_test_model.VARIANTS:
        out = _model_cache(variant)
        if variant in _TRAINING or (out / "train_info.json").exists():
            continue
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        log = open(tmp.with_name(tmp.name + ".log"), "wb")  # noqa: SIM115 - the child's, closed with it
        _TRAINING[variant] = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "train_test_model.py"), str(tmp), "--steps", str(TRAIN_STEPS),
             "--variant", variant, "--threads", "1"], stdout=log, stderr=subprocess.STDOUT)
        log.close()


def _trained(variant: str) -> Path:
    """A briefly trained 4-class mobilevitv2_050 (scripts/train_test_model.py), cached. Test
    workers (pytest -n) share the cache: one trains, the others wait for it under a lock."""
    out = _model_cache(variant)
    if (out / "train_info.json").exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".training.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "train_info.json").exists():
            _start_training()
            for name in list(_TRAINING):  # every model started here, before the lock goes
                _collect(name)
    return out


def _collect(variant: str) -> None:
    out = _model_cache(variant)
    tmp = out.with_name(out.name + ".tmp")
    if _TRAINING.pop(variant).wait() != 0:
        raise RuntimeError(f"training the {variant} test model failed: "
                           + tmp.with_name(tmp.name + ".log").read_text()[-3000:])
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    tmp.with_name(tmp.name + ".log").unlink()


# The end-to-end files with the longest serial wall time first (2 cores, 2026-11-30): in two
# workers (`-n 2 --dist loadfile`) files are handed out in collection order, so the long ones
# start early instead of ending the run alone on one worker.
LONGEST_FIRST = ("test_accuracy.py", "test_int8_gate.py", "test_ray.py", "test_train.py", "test_video.py",
                 "test_model_updates.py", "test_convert.py", "test_quantize.py", "test_live_failures.py",
                 "test_faults.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order kept


def pytest_sessionfinish(session, exitstatus):
    """Trainings still running (a session interrupted while waiting): stopped with it."""
    for proc in _TRAINING.values():
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def trained_dir() -> Path:
    """The hard test model ("shapes": ~73 % held-out top-1, many borderline images)."""
    return _trained("shapes")


@pytest.fixture(scope="session")
def accurate_dir() -> Path:
    """The confident, accurate test model ("colours": >= 95 % held-out top-1)."""
    return _trained("colours")


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

    out = tmp_path_factory.mktemp("models") / "shapes"
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
    return out


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
