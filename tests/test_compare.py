"""`edgeclass compare OLD NEW`: agreement, flips, accuracies and the verdict, against `run`.

Models (FP32 only, made once per session from the two trained test checkpoints):

* ``shapes``: the hard model, converted with ``crop_pct 1.0`` (its preprocessing differs from
  the others', so compare crops each decoded image twice);
* ``colours``: the accurate model (``crop_pct 0.875``);
* ``shuffled``: the colours IR with its labels rotated by one (what converting the checkpoint
  with a permuted labels file gives): every answer it gets right by class id is wrong by name;
* ``renamed``: the colours IR with ``stripes`` called ``lines`` (label sets that differ).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import read_csv, run_cli
import train_test_model
from train_test_model import CLASSES

ROTATED = CLASSES[1:] + CLASSES[:1]
RENAMED = tuple("lines" if c == "stripes" else c for c in CLASSES)


def _relabel(src: Path, dest: Path, labels: tuple[str, ...]) -> None:
    import openvino as ov

    from edgeclass.modelfiles.ir import read_ir, save_ir
    from edgeclass.modelfiles.metadata import read_metadata

    model = read_ir(ov.Core(), src / "model_fp32.xml")
    save_ir(model, read_metadata(model).with_updates(labels=labels), dest / "model_fp32.xml")


def build_models(root: Path, trained: Path, accurate: Path) -> dict[str, Path]:
    """The four FP32 model folders under ``root`` (made once; later calls return them)."""
    from edgeclass.model.convert import ConvertOptions, convert

    models = {name: root / name for name in ("shapes", "colours", "shuffled", "renamed")}
    if (root / "ready").exists():
        return models
    for name, ckpt, crop in (("shapes", trained, 1.0), ("colours", accurate, 0.875)):
        convert(ConvertOptions(model="mobilevitv2_050", weights=ckpt / "checkpoint.safetensors",
                               labels=ckpt / "labels.txt", output=models[name],
                               input_size=train_test_model.TRAIN_SIZE, crop_pct=crop, int8=False))
    _relabel(models["colours"], models["shuffled"], ROTATED)
    _relabel(models["colours"], models["renamed"], RENAMED)
    (root / "ready").touch()
    return models


@pytest.fixture(scope="module")
def models(tmp_path_factory, trained_dir, accurate_dir) -> dict[str, Path]:
    return build_models(tmp_path_factory.getbasetemp() / "update-models", trained_dir, accurate_dir)


@pytest.fixture(scope="module")
def validation(tmp_path_factory) -> Path:
    """8 labelled images per class (ImageFolder), drawn like the colours model's training images."""
    root = tmp_path_factory.mktemp("compare-val")
    train_test_model.write_images(root, per_class=8, seed=404, variant="colours")
    return root


def torch_free_cli(*args: str) -> subprocess.CompletedProcess:
    """The command with torch, timm and torchvision made unimportable (compare must not need them)."""
    from test_torch_free import BLOCK

    return subprocess.run([sys.executable, "-c", BLOCK, *args], capture_output=True, text=True, timeout=600)


_runs: dict[str, dict[str, str]] = {}


def run_labels(model: Path, folder: Path) -> dict[str, str]:
    """``edgeclass run`` on ``folder``: source -> top1_label (cached per model)."""
    key = f"{model}|{folder}"
    if key not in _runs:
        proc = run_cli("run", str(folder), "--model", str(model), "--precision", "fp32", "--no-cache",
                       "--max-failures", "1000")
        assert proc.returncode == 0, proc.stderr
        _runs[key] = {row["source"]: row["top1_label"] for row in read_csv(proc.stdout) if row["status"] == "ok"}
    return _runs[key]


def run_accuracy(labels: dict[str, str]) -> tuple[float, int]:
    right = sum(label == Path(source).parent.name for source, label in labels.items())
    return right / len(labels), len(labels)


def matrix_from_runs(old: dict[str, str], new: dict[str, str]) -> Counter:
    return Counter((old[s], new[s]) for s in old)


def matrix_from_report(report: dict) -> Counter:
    m = report["flip_matrix"]
    return Counter({(o, n): c for o, row in zip(m["old_labels"], m["counts"])
                    for n, c in zip(m["new_labels"], row) if c})


# ----------------------------------------------------------------------------- labelled: kept
def test_compare_keeps_the_better_model_and_measures_what_run_measures(models, validation, tmp_path):
    report_dir = tmp_path / "report"
    proc = torch_free_cli("compare", str(models["shapes"]), str(models["colours"]), "--validation", str(validation),
                          "--report", str(report_dir), "--precision", "fp32", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((report_dir / "report.json").read_text())
    assert report["verdict"] == "kept" and not report["refused"]
    assert report["same_preprocessing"] is False  # shapes crops at 1.0, colours at 0.875
    old_run, new_run = run_labels(models["shapes"], validation), run_labels(models["colours"], validation)
    acc = report["accuracy"]
    assert (acc["old"], acc["images"]) == run_accuracy(old_run)
    assert (acc["new"], acc["images"]) == run_accuracy(new_run)
    assert acc["new"] > acc["old"]  # the accurate model is the better one here
    assert acc["difference"]["estimate"] == pytest.approx(acc["new"] - acc["old"])
    assert acc["difference"]["low"] <= acc["difference"]["estimate"] <= acc["difference"]["high"]
    # the flip matrix, agreement and flipped images are those of the two runs, image by image
    assert matrix_from_report(report) == matrix_from_runs(old_run, new_run)
    flipped = {s for s in old_run if old_run[s] != new_run[s]}
    assert {f["path"] for f in report["flips"]} == flipped
    assert report["agreement"]["estimate"] == pytest.approx(1 - len(flipped) / len(old_run))
    # fewer than 100 labelled images: kept, but said to be thin evidence
    assert any("thin evidence" in n for n in report["notes"])
    assert "thin evidence" in proc.stderr and "verdict: kept" in proc.stdout
    # the verdict is recorded in NEW's folder, by model id, for promote
    record = json.loads((models["colours"] / "comparisons.json").read_text())["comparisons"]
    entry = next(e for e in record if e["old"] == report["old"]["model_id"])
    assert entry["new"] == report["new"]["model_id"] and entry["verdict"] == "kept"
    assert report["old"]["model_id"].startswith("shapes@") and report["new"]["model_id"].startswith("colours@")


# ----------------------------------------------------------------------------- labelled: refused
@pytest.fixture(scope="module")
def refused(models, validation, tmp_path_factory) -> dict:
    report_dir = tmp_path_factory.mktemp("refused") / "report"
    proc = run_cli("compare", str(models["colours"]), str(models["shuffled"]), "--validation", str(validation),
                   "--report", str(report_dir), "--no-cache")
    return {"proc": proc, "dir": report_dir, "report": json.loads((report_dir / "report.json").read_text())}


def test_compare_refuses_the_shuffled_model(refused, models, validation):
    proc, report = refused["proc"], refused["report"]
    assert proc.returncode == 5, proc.stderr
    assert "NEW refused" in proc.stderr and "Traceback" not in proc.stderr
    assert report["verdict"] == "refused" and report["same_preprocessing"] is True
    acc = report["accuracy"]
    assert (acc["old"], acc["images"]) == run_accuracy(run_labels(models["colours"], validation))
    assert (acc["new"], acc["images"]) == run_accuracy(run_labels(models["shuffled"], validation))
    assert acc["drop"]["low"] > 0.01  # the whole interval says NEW is worse by more than 1 pt
    # the same network under rotated names: every image flips, exactly along the rotation
    assert report["agreement"]["estimate"] == 0.0 and report["flipped"] == report["images"] == 32
    assert set(matrix_from_report(report)) <= set(zip(CLASSES, ROTATED))
    scores = [f["new_score"] for f in report["flips"]]
    assert scores == sorted(scores, reverse=True)  # most confident flips first
    record = json.loads((models["shuffled"] / "comparisons.json").read_text())["comparisons"]
    assert [e["verdict"] for e in record if e["old"] == report["old"]["model_id"]] == ["refused"]


def chromium_dom(html: Path, tmp: Path) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (scripts/install-test-system-deps.sh installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}"]
    proc = subprocess.run([exe, *flags, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_report_html_renders_in_chromium(refused, tmp_path):
    html, report = refused["dir"] / "report.html", refused["report"]
    text = html.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained
    dom = chromium_dom(html, tmp_path)
    assert "REFUSED" in dom.split('id="verdict"', 1)[1].split("</p>", 1)[0]
    table = dom.split('id="flips"', 1)[1].split("</table>", 1)[0]
    cells = [int(c) for c in re.findall(r"<td[^>]*>(\d+)</td>", table)]
    assert cells == [n for row in report["flip_matrix"]["counts"] for n in row]
    for label in CLASSES:
        assert f">{label}</th>" in table
    flipped = dom.split('id="flipped"', 1)[1]
    assert flipped.count('src="data:image/jpeg;base64,') == len(report["flips"])  # 32 <= the 48 shown
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", flipped)
    assert len(captions) == len(report["flips"])
    for caption, flip in zip(captions, report["flips"]):  # in report order: most confident first
        assert caption.startswith(flip["path"].rsplit("/", 1)[-1])
        assert f"<b>{flip['new_label']}</b> ({flip['new_score']:.2f})" in caption
        assert f"truth {flip['truth']}" in caption


# ----------------------------------------------------------------------------- unlabelled
def test_compare_without_labels_reports_agreement_and_flips_by_label_name(models, tmp_path):
    folder = tmp_path / "inbox"
    train_test_model.write_images(folder, per_class=2, seed=505, imagefolder=False, ext=".jpg", variant="colours")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    proc = run_cli("compare", str(models["colours"]), str(models["renamed"]), str(folder), str(tmp_path / "gone.png"),
                   "--report", str(tmp_path / "r"), "--no-cache")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["verdict"] == "unchecked" and report["accuracy"] is None
    assert report["images"] == 8
    assert sorted((f["path"].rsplit("/", 1)[-1], f["reason"].split(":")[0]) for f in report["failed"]) == [
        ("broken.jpg", "corrupt"), ("gone.png", "missing")]
    assert report["labels_only_old"] == ["stripes"] and report["labels_only_new"] == ["lines"]
    # same network, same crops: the only flips are stripes -> lines, one per image the model calls stripes
    colours = run_labels(models["colours"], folder)
    stripes = sum(label == "stripes" for label in colours.values())
    assert stripes > 0
    off_diagonal = {k: v for k, v in matrix_from_report(report).items() if k[0] != k[1]}
    assert off_diagonal == {("stripes", "lines"): stripes}
    assert report["agreement"]["estimate"] == pytest.approx(1 - stripes / 8)
    assert "labels only in OLD" in proc.stderr and "no labelled images" in proc.stderr


def test_compare_reads_each_image_once(models, validation, tmp_path):
    """Both models, one read (and so one decode) per file: counted with Python's audit hook on
    every open() of the process, without --report (its thumbnails read flipped files again)."""
    counter = (
        "import sys, collections\n"
        "opens = collections.Counter()\n"
        f"root = {str(validation)!r}\n"
        "def hook(event, args):\n"
        "    if event == 'open' and isinstance(args[0], str) and args[0].startswith(root):\n"
        "        opens[args[0]] += 1\n"
        "sys.addaudithook(hook)\n"
        "from edgeclass.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "finally:\n"
        "    print('OPENS', sorted(set(opens.values())), len(opens), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", counter, "compare", str(models["shapes"]), str(models["colours"]),
                           "--validation", str(validation), "--no-cache"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "OPENS [1] 32" in proc.stderr  # 32 images, each opened exactly once


# ----------------------------------------------------------------------------- bad input
def test_compare_bad_input_exits_with_a_message(models, validation, tmp_path):
    cases = [
        (("compare", str(models["colours"]), str(models["shapes"])), 2, "no images to compare"),
        (("compare", str(models["colours"]), str(models["shapes"]), "--validation", str(tmp_path / "nope")), 2,
         "is not a folder"),
        (("compare", str(tmp_path / "missing"), str(models["shapes"]), str(validation)), 3, "does not exist"),
        (("compare", str(models["colours"]), str(validation), str(validation)), 3, "holds no model_fp32.xml"),
        (("compare", str(models["colours"]), str(models["shapes"]), str(tmp_path / "clip.mp4")), 2,
         "compare takes images"),
        (("compare", str(models["colours"]), str(models["shapes"]), "--max-drop", "-1", str(validation)), 2, "max-drop"),
    ]
    (tmp_path / "afile").write_text("x")
    cases.append((("compare", str(models["colours"]), str(models["shapes"]), str(validation),
                   "--report", str(tmp_path / "afile")), 6, "cannot create --report"))
    for args, code, message in cases:
        proc = run_cli(*args)
        assert proc.returncode == code, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_compare_keeps_the_decoding_libraries_quiet_unless_verbose(models, tmp_path):
    """Files on which libpng and libjpeg print their own warnings: compare's stderr has only its
    own lines (as run's), and the libraries' lines come back with --verbose."""
    import numpy as np
    from make_hostile_corpus import noisy_files

    folder = tmp_path / "noisy"
    folder.mkdir()
    photo = np.ascontiguousarray(train_test_model.make_image(0, np.random.default_rng(3), (120, 160))[:, :, ::-1])
    for name, (data, _, _) in noisy_files(photo).items():
        if name in ("garbled_scan.jpg", "bad_iccp.png"):
            (folder / name).write_bytes(data)
    args = ("compare", str(models["colours"]), str(models["renamed"]), str(folder), "--no-cache")
    quiet, verbose = run_cli(*args), run_cli(*args, "--verbose")
    assert quiet.returncode == verbose.returncode == 0, quiet.stderr
    for line in ("libpng warning: iCCP", "Corrupt JPEG data"):
        assert line not in quiet.stderr and line in verbose.stderr, (line, verbose.stderr)
    assert " on 2 images;" in quiet.stdout  # both noisy files decoded and compared
