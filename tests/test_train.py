"""`edgeclass train`: own classes from a folder of folders -> FP32 + INT8 IR + held-out report.

Real parts throughout: the real command in a subprocess, timm + OpenVINO + NNCF + scikit-learn,
Chromium for the HTML. The backbone is the accurate 4-class test model (`accurate_dir`), its
head dropped; the dataset is 3 of its classes drawn afresh (other seeds, other sizes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest

from conftest import read_csv, run_cli
import train_test_model as ttm

CLASSES = ("circle", "square", "triangle")  # labels 0, 1, 2 of the generator
PER_CLASS = 40  # per class; every 5th is held out: 32 train + 8 held-out
SIZE_ARGS = ["--model", "mobilevitv2_050", "--input-size", "64", "--crop-pct", "0.875"]


def write_class_images(folder: Path, per_class: int, seed: int, size=(80, 80), hard: bool = False) -> dict[str, list[Path]]:
    """Images of CLASSES in the class colours; with ``hard``, every 3rd is drawn like the "shapes"
    test set (30 % of those in a random colour: only the shape tells), so the head makes mistakes."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Path]] = {name: [] for name in CLASSES}
    for i in range(per_class):
        for label, name in enumerate(CLASSES):
            (folder / name).mkdir(parents=True, exist_ok=True)
            path = folder / name / f"{name}_{seed}_{i:03d}.png"
            image = ttm.make_image(label, rng, size, variant="shapes" if hard and i % 3 == 0 else "colours")
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            out[name].append(path)
    return out


def heldout_of(files: dict[str, list[Path]]) -> dict[str, list[Path]]:
    """The documented split: every 5th image of each class, in sorted order."""
    return {name: sorted(paths, key=str)[4::5] for name, paths in files.items()}


def read_ir_meta(xml: Path):
    from edgeclass.modelfiles.metadata import read_metadata

    return read_metadata(ov.Core().read_model(xml))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("train-ds") / "shapes3"
    files = write_class_images(root, PER_CLASS, seed=7, hard=True)
    # bad files among good ones: listed, skipped, counted
    (root / "square" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    (root / "circle" / "zz_empty.jpg").write_bytes(b"")
    return {"root": root, "files": files, "bad": {str(root / "square" / "zz_broken.png"), str(root / "circle" / "zz_empty.jpg")}}


@pytest.fixture(scope="module")
def probe(dataset, accurate_dir, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("train-out") / "model"
    # --max-drop 10: with 24 held-out images one flipped image is 4 points, and NNCF's accuracy
    # control (minutes) is the gate's business, tested in test_quantize.py
    proc = run_cli("train", str(dataset["root"]), *SIZE_ARGS, "--weights", str(accurate_dir / "checkpoint.safetensors"),
                   "--max-drop", "10", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": out, "proc": proc, "report": json.loads((out / "report.json").read_text())}


def run_rows(model: Path, inputs: list[Path], *extra: str) -> list[dict]:
    proc = run_cli("run", *map(str, inputs), "--model", str(model), "-k", "3", "--no-cache", "-q", *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return read_csv(proc.stdout)


# ----------------------------------------------------------------------------- probe: the model
@pytest.mark.slow
def test_probe_writes_a_classifier_with_the_new_labels_and_keeps_int8(probe):
    out = probe["out"]
    fp32, int8 = read_ir_meta(out / "model_fp32.xml"), read_ir_meta(out / "model_int8.xml")
    assert fp32.labels == CLASSES and int8.labels == CLASSES
    assert int8.precision == "int8" and int8.accuracy["passed"] is True
    assert not (out / "model_int8.rejected.xml").exists()
    ir = ov.Core().read_model(out / "model_fp32.xml")
    assert ir.outputs[0].get_partial_shape()[1].get_length() == 3
    assert "probabilities" in ir.outputs[0].get_names()
    # the grafted head is OpenVINO ops on the pooled features
    ops = {op.get_friendly_name(): op for op in ir.get_ordered_ops()}
    softmax = ir.get_results()[0].input_value(0).get_node()
    assert softmax.get_type_name() == "Softmax" and softmax.get_friendly_name() == "trained_head.softmax"
    add = softmax.input_value(0).get_node()
    assert add.get_type_name() == "Add" and add.input_value(0).get_node().get_type_name() == "MatMul"
    assert tuple(ops["trained_head.weight"].get_output_shape(0)) == (256, 3)  # mobilevitv2_050 features x classes
    train = fp32.extra["train"]
    assert train["mode"] == "probe" and train["images"]["skipped"] == 2
    assert train["images"]["train"] == 3 * 32 and train["images"]["heldout"] == 3 * 8
    assert 0.0 < fp32.confidence_threshold < 1.0 and int8.confidence_threshold == fp32.confidence_threshold
    assert train["temperature"] > 0


@pytest.mark.slow
def test_probe_classifies_new_images_of_the_new_classes(probe, tmp_path):
    fresh = write_class_images(tmp_path / "fresh", 12, seed=99, size=(96, 120))
    paths = [p for name in CLASSES for p in fresh[name]]
    rows = run_rows(probe["out"], paths, "--min-score", "0")
    truth = {str(p): name for name in CLASSES for p in fresh[name]}
    right = sum(r["top1_label"] == truth[r["source"]] for r in rows)
    assert len(rows) == 36 and right / len(rows) >= 0.9, [(r["source"], r["top1_label"]) for r in rows]


@pytest.mark.slow
def test_unreadable_images_are_listed_skipped_and_counted(probe, dataset):
    skipped = {s["path"]: s["reason"] for s in probe["report"]["skipped"]}
    assert set(skipped) == dataset["bad"]
    assert skipped[str(dataset["root"] / "circle" / "zz_empty.jpg")].startswith("empty")
    assert skipped[str(dataset["root"] / "square" / "zz_broken.png")].startswith("corrupt")
    for path in dataset["bad"]:
        assert f"skipped {path}" in probe["proc"].stderr


# ----------------------------------------------------------------------------- probe: the report
@pytest.mark.slow
def test_report_json_matches_an_independent_run_on_the_heldout_images(probe, dataset):
    report = probe["report"]
    held = heldout_of(dataset["files"])
    rows = run_rows(probe["out"], [p for name in CLASSES for p in held[name]], "--min-score", "0")
    truth = {str(p): i for i, name in enumerate(CLASSES) for p in held[name]}
    cm = np.zeros((3, 3), int)
    for r in rows:
        cm[truth[r["source"]], int(r["top1_id"])] += 1
    h = report["heldout"]
    assert report["evaluated_precision"] == "int8" and report["int8"]["kept"] is True
    assert h["images"] == 24 and h["confusion"] == cm.tolist()
    assert h["accuracy"] == pytest.approx(np.trace(cm) / 24)
    for i, row in enumerate(h["per_class"]):
        assert row["label"] == CLASSES[i] and row["support"] == 8
        assert row["recall"] == pytest.approx(cm[i, i] / 8)
        if cm[:, i].sum():
            assert row["precision"] == pytest.approx(cm[i, i] / cm[:, i].sum())
    pairs = [(p["true"], p["predicted"], p["count"]) for p in h["most_confused"]]
    expected = sorted(((cm[t, q], t, q) for t in range(3) for q in range(3) if t != q and cm[t, q]),
                      key=lambda x: (-x[0], x[1], x[2]))
    assert pairs == [(CLASSES[t], CLASSES[q], int(n)) for n, t, q in expected][:5]
    for p in h["most_confused"]:  # examples really are images of that class taken for the other
        for e in p["examples"]:
            row = next(r for r in rows if r["source"] == e["path"])
            assert truth[e["path"]] == CLASSES.index(p["true"]) and row["top1_label"] == p["predicted"]
    assert h["accuracy"] >= 0.75 and h["most_confused"]


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (scripts/install-test-system-deps.sh installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_report_html_renders_in_chromium(probe, tmp_path):
    html = probe["out"] / "report.html"
    assert "http://" not in html.read_text() and "https://" not in html.read_text()  # self-contained
    dom = chromium("--dump-dom", html.as_uri(), tmp=tmp_path).stdout
    for name in CLASSES:
        assert f">{name}</td>" in dom and f">{name}</th>" in dom
    table = dom.split("id=\"confusion\"", 1)[1].split("</table>", 1)[0]
    cells = [int(c) for c in __import__("re").findall(r"<td[^>]*>(\d+)</td>", table)]
    assert cells == [n for row in probe["report"]["heldout"]["confusion"] for n in row]
    examples = sum(len(p["examples"]) for p in probe["report"]["heldout"]["most_confused"])
    assert dom.count("src=\"data:image/jpeg;base64,") == examples
    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,900", html.as_uri(), tmp=tmp_path)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (900, 1200)
    assert (image < 128).mean() > 0.005 and image.std() > 10  # text and tables, not a blank page


@pytest.mark.slow
def test_info_summarises_the_training_report(probe):
    proc = run_cli("info", str(probe["out"]), env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    h = probe["report"]["heldout"]
    assert f"held-out accuracy {h['accuracy'] * 100:.1f}%" in proc.stdout
    for row in h["per_class"]:  # the class's own row: the one whose first cell is its label
        line = next(l for l in proc.stdout.splitlines() if _first_cell(l) == row["label"] and "%" in l)
        assert f"{row['recall'] * 100:.1f}%" in line


def _first_cell(line: str) -> str:
    cells = [c.strip() for c in line.replace("┃", "│").split("│")]
    return cells[1] if len(cells) > 2 else ""


# ----------------------------------------------------------------------------- calibrated abstain
@pytest.mark.slow
def test_min_score_turns_low_scores_into_unknown_and_keeps_the_scores(probe, dataset):
    held = heldout_of(dataset["files"])
    inputs = [p for name in CLASSES for p in held[name]]
    plain = {r["source"]: r for r in run_rows(probe["out"], inputs, "--min-score", "0")}
    scores = sorted(float(r["top1_score"]) for r in plain.values())
    cut = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2  # half above, half below
    rows = run_rows(probe["out"], inputs, "--min-score", f"{cut:.6f}")
    unknown = 0
    for r in rows:
        before = plain[r["source"]]
        assert r["status"] == "ok"
        assert (r["top1_id"], r["top1_score"], r["top2_label"]) == (before["top1_id"], before["top1_score"], before["top2_label"])
        if float(before["top1_score"]) < cut:
            assert r["top1_label"] == "unknown"
            unknown += 1
        else:
            assert r["top1_label"] == before["top1_label"] != "unknown"
    assert unknown == len(rows) // 2


@pytest.mark.slow
def test_default_min_score_comes_from_the_ir_and_keeps_95_percent_of_right_answers(probe, dataset):
    held = heldout_of(dataset["files"])
    inputs = [p for name in CLASSES for p in held[name]]
    threshold = read_ir_meta(probe["out"] / "model_int8.xml").confidence_threshold
    plain = {r["source"]: r for r in run_rows(probe["out"], inputs, "--min-score", "0")}
    default = run_rows(probe["out"], inputs)
    for r in default:
        low = float(plain[r["source"]]["top1_score"]) < threshold
        assert (r["top1_label"] == "unknown") == low
    # the threshold's definition, checked on the FP32 IR it was computed for (temperature folded in)
    fp32 = run_rows(probe["out"], inputs, "--min-score", "0", "--precision", "fp32")
    truth = {str(p): name for name in CLASSES for p in held[name]}
    right = [float(r["top1_score"]) for r in fp32 if r["top1_label"] == truth[r["source"]]]
    kept = sum(s >= threshold for s in right) / len(right)
    assert kept >= 0.95 - 1 / len(right) and threshold > 1 / 3


@pytest.mark.slow
def test_probe_from_a_model_folder_needs_no_torch_and_reproduces_the_model(probe, dataset, tmp_path):
    import sys

    from test_torch_free import BLOCK  # torch, timm, torchvision made unimportable

    out = tmp_path / "from-folder"
    proc = subprocess.run([sys.executable, "-c", BLOCK, "train", str(dataset["root"]), "--backbone", str(probe["out"]),
                           "--no-int8", "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta, first = read_ir_meta(out / "model_fp32.xml"), read_ir_meta(probe["out"] / "model_fp32.xml")
    assert meta.labels == CLASSES and meta.model_name == "mobilevitv2_050"
    assert meta.extra["train"]["backbone_origin"].endswith(f"backbone IR {(probe['out'] / 'model_fp32.xml').resolve()}")
    # the IR cut before its trained head gives the torch-exported backbone's features: same head, same scores
    assert meta.confidence_threshold == pytest.approx(first.confidence_threshold, abs=2e-3)
    held = [p for paths in heldout_of(dataset["files"]).values() for p in paths]
    new = run_rows(out, held, "--min-score", "0", "--precision", "fp32")
    old = {r["source"]: r for r in run_rows(probe["out"], held, "--min-score", "0", "--precision", "fp32")}
    for r in new:
        assert r["top1_id"] == old[r["source"]]["top1_id"]
        assert float(r["top1_score"]) == pytest.approx(float(old[r["source"]]["top1_score"]), abs=1e-3)


# ----------------------------------------------------------------------------- finetune, random init
@pytest.fixture(scope="module")
def small_val_dataset(tmp_path_factory) -> Path:
    """train/ + val/ layout, few images per class (a warning with the counts)."""
    root = tmp_path_factory.mktemp("train-small") / "small"
    write_class_images(root / "train", 8, seed=11)
    write_class_images(root / "val", 5, seed=12)
    return root


@pytest.mark.slow
def test_finetune_keeps_the_best_epoch_and_warns_about_few_images(small_val_dataset, accurate_dir, tmp_path):
    out = tmp_path / "ft"
    proc = run_cli("train", str(small_val_dataset), *SIZE_ARGS, "--weights", str(accurate_dir / "checkpoint.safetensors"),
                   "--mode", "finetune", "--epochs", "3", "--patience", "2", "--batch-size", "8", "--no-int8",
                   "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "few training images: circle 8, square 8, triangle 8" in proc.stderr
    meta = read_ir_meta(out / "model_fp32.xml")
    assert meta.labels == CLASSES and not (out / "model_int8.xml").exists()
    ft = meta.extra["train"]["finetune"]
    history = ft["history"]
    assert 1 <= len(history) <= 3 and ft["threads"] == len(os.sched_getaffinity(0))
    best = min(history, key=lambda h: h["heldout_loss"])
    assert ft["best_epoch"] == best["epoch"] and ft["options"]["train_stages"] is None
    report = json.loads((out / "report.json").read_text())
    assert report["evaluated_precision"] == "fp32" and report["heldout"]["images"] == 15
    # the saved IR is the best epoch's network (temperature does not change the top-1)
    assert abs(report["heldout"]["accuracy"] - best["heldout_accuracy"]) <= 1 / 15 + 1e-9
    assert report["heldout"]["accuracy"] >= 0.6  # 3 short epochs on 24 images: well above chance (1/3)
    val = sorted((small_val_dataset / "val").rglob("*.png"))
    rows = run_rows(out, val, "--min-score", "0")
    assert sum(r["top1_label"] == Path(r["source"]).parent.name for r in rows) / 15 == pytest.approx(report["heldout"]["accuracy"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "finetune", "--train-stages", "6"], "--train-stages must be 1 to 5 (the model has 5 stages), got 6"),
        (["--mode", "finetune", "--train-stages", "0"], "--train-stages"),
        (["--train-stages", "2"], "--train-stages is for --mode finetune"),
    ],
    ids=["more-than-the-model-has", "zero", "probe"],
)
def test_bad_train_stages_are_usage_errors_before_any_decoding(small_val_dataset, tmp_path, args, message):
    proc = run_cli("train", str(small_val_dataset), *SIZE_ARGS, "--random-init", "--no-int8", *args, "-o", str(tmp_path / "m"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr and "decoding" not in proc.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_random_init_probe_is_explicit_and_recorded(small_val_dataset, tmp_path):
    out = tmp_path / "rnd"
    proc = run_cli("train", str(small_val_dataset), *SIZE_ARGS, "--random-init", "--no-int8", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = read_ir_meta(out / "model_fp32.xml")
    assert meta.extra["train"]["backbone_origin"] == "random-init (seed 0)" and meta.labels == CLASSES
    rows = run_rows(out, sorted((small_val_dataset / "val").rglob("*.png")), "--min-score", "0")
    assert len(rows) == 15 and all(r["status"] == "ok" and r["top1_label"] in CLASSES for r in rows)


def test_without_weights_offline_the_error_says_what_to_do(small_val_dataset, tmp_path):
    env = {"HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_OFFLINE": "1"}
    proc = run_cli("train", str(small_val_dataset), "--model", "mobilevitv2_050.cvnets_in1k", "-o", str(tmp_path / "m"), env=env)
    assert proc.returncode == 3, proc.stderr
    assert "--weights" in proc.stderr and "--random-init" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


# ----------------------------------------------------------------------------- bad datasets
def _bad(tmp_path: Path, make) -> subprocess.CompletedProcess:
    root = tmp_path / "ds"
    root.mkdir()
    make(root)
    return run_cli("train", str(root), "--random-init", "-o", str(tmp_path / "out"))


def _images(folder: Path, n: int, label: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(label)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), ttm.make_image(label, rng, (40, 40)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: _images(r / "only", 5), "has one class (only): a classifier needs at least two"),
        (lambda r: (_images(r / "a", 5), (r / "b").mkdir(), (r / "c").mkdir()), "classes with no training images: b, c"),
        (lambda r: _images(r, 5), "has no class sub-folders"),
        (lambda r: (_images(r / "cat", 5), _images(r / "unknown", 5, 1)), "a class is named 'unknown'"),
        (lambda r: (_images(r / "a", 5), _images(r / "b", 5, 1), _images(r / "val" / "c", 2)),
         "has folders that are not training classes: c"),
        (lambda r: (_images(r / "a", 1), _images(r / "b", 1, 1)), "no images to hold out for evaluation"),
    ],
    ids=["one-class", "empty-classes", "no-class-folders", "class-named-unknown", "stray-val-class", "nothing-to-hold-out"],
)
def test_bad_datasets_get_clear_errors(tmp_path, make, message):
    proc = _bad(tmp_path, make)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_dataset_and_conflicting_options_are_usage_errors(tmp_path):
    proc = run_cli("train", str(tmp_path / "nope"), "--random-init")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = run_cli("train", str(tmp_path), "--random-init", "--weights", str(tmp_path / "w.safetensors"))
    assert proc.returncode == 2 and "exclude each other" in proc.stderr
    proc = run_cli("train", str(tmp_path), "--mode", "bogus")
    assert proc.returncode == 2 and "bogus" in proc.stderr


def test_a_class_whose_images_all_fail_to_decode_is_an_error(tmp_path):
    root = tmp_path / "ds"
    _images(root / "a", 6)
    (root / "b").mkdir()
    for i in range(6):
        (root / "b" / f"{i}.jpg").write_bytes(b"\xff\xd8garbage")
    proc = run_cli("train", str(root), "--random-init", *SIZE_ARGS, "--no-int8", "-o", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "after skipping unreadable images, classes with no training images: b" in proc.stderr


# ----------------------------------------------------------------------------- the pieces, in process


