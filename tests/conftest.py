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
from demo_inputs import make_hub_cache  # noqa: E402,F401  (tests import it from here)

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


def cached_once(name: str, key: str, build) -> Path:
    """``build(folder)`` once for every pytest worker, under a lock, in tests/.cache by ``key``."""
    cached = CACHE / f"{name}-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cached / ".complete").exists():
            shutil.rmtree(cached, ignore_errors=True)
            build(cached)
            (cached / ".complete").touch()
    return cached


def built_once(name: str, key: str, build, dest: Path) -> Path:
    """:func:`cached_once`, copied to ``dest``: each worker gets its own copy to write next to."""
    shutil.copytree(cached_once(name, key, build), dest, ignore=shutil.ignore_patterns(".complete"))
    return dest


# The end-to-end files with the longest serial wall time first (measured 2026-12-06, 2 cores, the
# whole tier with --durations=0): in two workers (`-n 2 --dist loadfile`) files are handed out in
# this order, so the long ones start early instead of ending the run alone on one worker; a file
# that mostly computes (NNCF, training) alternates with one that mostly waits (live servers,
# clocks, a Ray cluster starting), so one worker's waiting is the other's CPU. The other end-to-end
# files follow, then the in-process tier (tests/unit/: short files that fill the last gaps).
LONGEST_FIRST = ("test_int8_gate.py", "test_video.py", "test_train.py", "test_live_failures.py", "test_accuracy.py",
                 "test_ray.py", "test_cpu_classes.py", "test_cron.py", "test_convert.py", "test_publish.py",
                 "test_model_updates.py", "test_quantize.py", "test_faults.py", "test_publish_run.py",
                 "test_video_keyframes.py")


def pytest_configure(config):
    # pytest-xdist 3.x hands files out by test count unless told not to, which undoes LONGEST_FIRST
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # stable: a file's own order kept
    items.sort(key=lambda item: (item.path.parent.name == "unit", rank.get(item.path.name, len(rank))))


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
def image_sets() -> dict[str, Path]:
    """Generated calibration (ImageFolder), validation (ImageFolder) and run folders, made once for
    every pytest worker at one path: the INT8 record of the shared test model hashes its calibration
    files' paths. Read only: a test that adds or moves files copies a folder first."""
    def build(root: Path) -> None:
        train_test_model.write_images(root / "calibration", per_class=40, seed=101)
        train_test_model.write_images(root / "validation", per_class=50, seed=202)
        train_test_model.write_images(root / "run", per_class=3, seed=303, imagefolder=False, ext=".jpg")

    key = hashlib.sha256((REPO / "scripts" / "train_test_model.py").read_bytes()).hexdigest()[:12]
    root = cached_once("images", key, build)
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

    key = _cache_key(FIXTURE_SHA256["shapes"].encode(), str(image_sets["calibration"]).encode())
    return built_once("shapes-model", key, build, tmp_path_factory.mktemp("models") / "shapes")


def fp32_only_copy(model_dir: Path, dest: Path) -> Path:
    """A model folder holding only the FP32 IR of ``model_dir`` (to quantize it again)."""
    dest.mkdir(parents=True)
    for f in ("model_fp32.xml", "model_fp32.bin"):
        shutil.copy(model_dir / f, dest / f)
    return dest


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


@pytest.fixture
def broker(tmp_path):
    """A Mosquitto broker on 127.0.0.1 for one test (tests/mqtt_broker.py), stopped by its pid."""
    from mqtt_broker import Broker

    b = Broker(tmp_path).start()
    yield b
    b.stop()
