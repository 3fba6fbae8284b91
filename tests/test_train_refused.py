"""`edgeclass train` when the INT8 gate refuses INT8: exit 5, the FP32 model kept, evaluated and
reported, `run` falling back to FP32 with a warning, `info` saying so.

Real parts only: the real commands in subprocesses, OpenVINO, NNCF (its accuracy control too),
scikit-learn; the backbone is the accurate 4-class test model (`accurate_dir`) converted to an
FP32 IR and used torch-free with `train --backbone`.

How INT8 is made to lose, for real, on any backbone and any CPU. The dataset is a careless camera
dump: each class folder is mostly blank frames (the same dark-grey frame, 36 of 40 images in every
class) and a few frames of the subject, a small bright square whose brightness is the class (250
"bright", 150 "dim"); val/ (the held-out split) holds subject frames only. `train` calibrates INT8
on the training split, so INT8's input quantizer gets the range of blank frames: it ends at grey
42.5 (NNCF's activation range is the mean of the frames' minima and maxima: (72 x 25 + 4 x 250 +
4 x 150) / 80). Both squares clip to 42.5, every held-out image becomes the same tensor before the
first convolution, and INT8 gives all of them one class: 50 % against FP32's 100 %. No float
arithmetic decides this, so neither the test backbone (retrained from scratch on each fresh
machine) nor the CPU (bf16 or not) can change it.

`--no-accuracy-control` keeps it that way: NNCF's accuracy control may revert the first
convolution to float and, depending on the backbone, win INT8 back (it did with a test model
trained on one machine and not with the one trained on another), which test_accuracy.py tests.
Here it is plain INT8 or refusal, as a user who wants a fast `train` asks.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest

from conftest import read_csv, run_cli

CLASSES = ("bright", "dim")  # sorted folder names: class ids 0, 1
LEVELS = {"bright": 250, "dim": 150}  # the square's grey level
BACKGROUND = 25  # the blank frame's grey level
SQUARE = 4  # px, at the centre
SIZE = 73  # the IR's resize (64 / 0.875): no resampling, every frame of a class is one tensor
BLANK, LIT, HELD = 36, 4, 12  # per class: blank and lit training frames, held-out (val/) frames
EXIT_ACCURACY_GATE = 5


def frame(level: int | None) -> np.ndarray:
    img = np.full((SIZE, SIZE, 3), BACKGROUND, np.uint8)
    if level is not None:
        top = SIZE // 2 - SQUARE // 2
        img[top : top + SQUARE, top : top + SQUARE] = level
    return img


def write_dataset(root: Path) -> dict[str, list[Path]]:
    """DATASET/<class>/ (blank + lit frames) and DATASET/val/<class>/ (lit frames); returns val/."""
    held: dict[str, list[Path]] = {}
    for name in CLASSES:
        for folder, items in ((root / name, [("blank", None, BLANK), ("lit", LEVELS[name], LIT)]),
                              (root / "val" / name, [("val", LEVELS[name], HELD)])):
            folder.mkdir(parents=True)
            for tag, level, n in items:
                for i in range(n):
                    assert cv2.imwrite(str(folder / f"{tag}_{i:03d}.png"), frame(level))
        held[name] = sorted((root / "val" / name).glob("*.png"))
    return held


@pytest.fixture(scope="module")
def backbone(accurate_dir, tmp_path_factory) -> Path:
    """The accurate test model as an FP32-only model folder (what `convert --no-int8` writes)."""
    from edgeclass.model.convert import ConvertOptions, convert

    out = tmp_path_factory.mktemp("backbone") / "colours"
    convert(ConvertOptions(model="mobilevitv2_050", weights=accurate_dir / "checkpoint.safetensors",
                           labels=accurate_dir / "labels.txt", output=out, input_size=64, crop_pct=0.875,
                           int8=False))
    return out


@pytest.fixture(scope="module")
def refused(backbone, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("refused-ds") / "squares"
    held = write_dataset(root)
    out = tmp_path_factory.mktemp("refused-out") / "model"
    proc = run_cli("train", str(root), "--backbone", str(backbone), "-o", str(out), "--no-accuracy-control")
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    truth = {str(p): name for name in CLASSES for p in held[name]}
    return {"root": root, "held": [p for name in CLASSES for p in held[name]], "truth": truth, "out": out,
            "proc": proc, "report": report}


def run_rows(model: Path, inputs: list[Path], *extra: str) -> tuple[list[dict], str]:
    proc = run_cli("run", *map(str, inputs), "--model", str(model), "--no-cache", "-q", *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return read_csv(proc.stdout), proc.stderr


def read_ir_meta(xml: Path):
    from edgeclass.modelfiles.metadata import read_metadata

    return read_metadata(ov.Core().read_model(xml))


# ----------------------------------------------------------------------------- the command
@pytest.mark.slow
def test_refused_int8_exits_5_and_keeps_the_fp32_model(refused):
    proc, out = refused["proc"], refused["out"]
    assert proc.returncode == EXIT_ACCURACY_GATE, (
        f"INT8 was not refused; train said:\n{proc.stderr[-3000:]}")
    assert "Traceback" not in proc.stderr
    assert "CUDA" not in proc.stderr  # NNCF's torch extensions' import notice is not the user's business
    assert proc.stdout == ""  # NNCF's progress bars go to stderr with the messages: stdout is for data
    assert "INT8: refused (model_int8.rejected.xml)" in proc.stderr.splitlines()
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and error[0].startswith("error: INT8 refused: accuracy drop 50.00 pt (95% CI ")
    assert "on 24 labelled validation images exceeds --max-drop 1.00 pt even at the interval's lower bound" in error[0]
    assert "saved as model_int8.rejected.xml, `run` uses FP32" in error[0]
    # the cause is said too: the training split, which calibrates INT8, is mostly blank frames
    assert "the calibration images are nearly flat" in proc.stderr
    for name in ("model_fp32.xml", "model_fp32.bin", "model_int8.rejected.xml", "model_int8.rejected.bin",
                 "report.json", "report.html"):
        assert (out / name).is_file(), name
    assert not (out / "model_int8.xml").exists() and not (out / "model_int8.bin").exists()
    fp32, rejected = read_ir_meta(out / "model_fp32.xml"), read_ir_meta(out / "model_int8.rejected.xml")
    assert fp32.labels == CLASSES == rejected.labels
    assert fp32.precision == "fp32" and rejected.precision == "int8"
    assert rejected.confidence_threshold == fp32.confidence_threshold
    a = rejected.accuracy
    assert a["verdict"] == "refused" and a["passed"] is False and a["criterion"] == "accuracy drop"
    assert a["limit"] == pytest.approx(0.01) and a["drop"]["low"] > a["limit"]
    calibration = rejected.calibration  # plain INT8 only, as asked, and the record says so
    assert calibration["options"]["accuracy_control"] is False and calibration["method"] == "plain"
    assert [a["method"] for a in calibration["attempts"]] == ["plain"] and calibration["reverted_to_float"] == []


@pytest.mark.slow
def test_the_rejected_int8_really_loses_what_the_gate_says(refused):
    """The gate's INT8 figure checked independently: the rejected IR compiled as `run` compiles
    INT8, on the held-out images decoded as `run` decodes them."""
    from edgeclass.media.decode import DecodeOptions, load_image_tensor

    out, truth = refused["out"], refused["truth"]
    meta = read_ir_meta(out / "model_int8.rejected.xml")
    request = ov.Core().compile_model(out / "model_int8.rejected.xml", "CPU").create_infer_request()
    predicted = {}
    for path in truth:
        probs = request.infer({0: load_image_tensor(path, meta.preprocess, DecodeOptions())[None]})[0]
        predicted[path] = CLASSES[int(np.argmax(probs))]
    a = meta.accuracy
    assert a["images"] == len(truth) == 2 * HELD and a["views"] == 1
    assert len(set(predicted.values())) == 1  # one answer for every image: the classes merged
    assert a["int8_top1"] == pytest.approx(sum(predicted[p] == truth[p] for p in truth) / len(truth)) == 0.5
    assert a["fp32_top1"] == 1.0 and a["drop"]["estimate"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- the report
@pytest.mark.slow
def test_report_says_int8_was_refused_and_evaluates_fp32(refused):
    report, out = refused["report"], refused["out"]
    assert report is not None, refused["proc"].stderr[-3000:]
    int8 = report["int8"]
    assert int8["kept"] is False and int8["xml"] == "model_int8.rejected.xml"
    assert int8["gate"] == read_ir_meta(out / "model_int8.rejected.xml").accuracy
    gate = int8["gate"]
    assert gate["verdict"] == "refused" and gate["criterion"] == "accuracy drop"
    assert gate["limit"] == pytest.approx(0.01)
    assert gate["drop"]["low"] > 0.2 > gate["limit"]  # the whole interval far above the limit
    assert gate["fp32_top1"] == 1.0 and gate["int8_top1"] == 0.5
    assert report["evaluated_precision"] == "fp32"
    assert report["heldout_source"] == str(refused["root"] / "val") and report["heldout"]["images"] == 2 * HELD
    html = (out / "report.html").read_text()
    assert "INT8: refused by the gate (run uses FP32)" in html
    assert "held-out top-1 FP32 100.0%, INT8 50.0%" in html and "fp32 model" in html


@pytest.mark.slow
def test_report_heldout_figures_are_those_of_an_independent_fp32_run(refused):
    report, truth = refused["report"], refused["truth"]
    rows, _ = run_rows(refused["out"], refused["held"], "--precision", "fp32", "--min-score", "0")
    assert sorted(r["source"] for r in rows) == sorted(truth)
    cm = np.zeros((2, 2), int)
    for r in rows:
        cm[CLASSES.index(truth[r["source"]]), CLASSES.index(r["top1_label"])] += 1
    h = report["heldout"]
    assert h["confusion"] == cm.tolist()
    assert h["accuracy"] == pytest.approx(np.trace(cm) / len(rows)) == report["int8"]["gate"]["fp32_top1"]
    for i, row in enumerate(h["per_class"]):
        assert row["label"] == CLASSES[i] and row["support"] == HELD
        assert row["recall"] == pytest.approx(cm[i, i] / HELD)


# ----------------------------------------------------------------------------- run and info afterwards
@pytest.mark.slow
def test_run_uses_fp32_and_says_so_even_with_q(refused, tmp_path):
    out, inputs, truth = refused["out"], refused["held"], refused["truth"]
    summary = tmp_path / "summary.json"
    rows, stderr = run_rows(out, inputs, "--min-score", "0", "--summary-json", str(summary))
    warning = (f"warning: running FP32: the INT8 model in {out} was refused by the INT8 gate "
               f"(model_int8.rejected.xml; see `edgeclass info {out}`)")
    assert warning in stderr.splitlines(), stderr
    s = json.loads(summary.read_text())
    assert s["precision"] == "fp32" and s["inference_precision"] == "f32" and s["ok"] == len(inputs)
    forced, forced_stderr = run_rows(out, inputs, "--min-score", "0", "--precision", "fp32")
    assert "running FP32" not in forced_stderr  # FP32 asked for: nothing to warn about
    assert [r["source"] for r in rows] == [r["source"] for r in forced]
    for r, f in zip(rows, forced):
        assert (r["status"], r["top1_id"], r["top1_label"]) == ("ok", f["top1_id"], f["top1_label"])
        assert float(r["top1_score"]) == pytest.approx(float(f["top1_score"]), abs=1e-6)
        assert r["top1_label"] == truth[r["source"]]  # FP32 tells the classes apart


@pytest.mark.slow
def test_info_shows_the_refusal(refused):
    proc = run_cli("info", str(refused["out"]), env={"COLUMNS": "1000"})
    assert proc.returncode == 0, proc.stderr
    assert "model_int8.rejected.xml" in proc.stdout
    assert "gate REFUSED: accuracy drop 50.00 pt" in proc.stdout
    assert f"held-out accuracy 100.0% on {2 * HELD} images, fp32 model" in proc.stdout
