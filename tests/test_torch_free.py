"""run, quantize and info must work where torch (and timm) cannot be imported."""

from __future__ import annotations

import subprocess
import sys

from conftest import fp32_only_copy, read_csv

# Makes torch, timm and torchvision look uninstalled: importing them raises
# ModuleNotFoundError, and importlib.util.find_spec (which NNCF uses to detect frameworks)
# returns a spec without origin, which NNCF treats as "not present".
BLOCK = (
    "import sys, importlib.machinery\n"
    "class _Gone:\n"
    "    def create_module(self, spec):\n"
    "        raise ModuleNotFoundError(f'No module named {spec.name!r} (blocked in this test)', name=spec.name)\n"
    "    def exec_module(self, module):\n"
    "        pass\n"
    "class _Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'timm', 'torchvision'):\n"
    "            return importlib.machinery.ModuleSpec(name, _Gone())\n"
    "sys.meta_path.insert(0, _Block())\n"
    "from edgeclass.cli import app\n"
    "try:\n"
    "    app(sys.argv[1:])\n"
    "finally:\n"
    "    assert not any(m.split('.')[0] in ('torch', 'timm') for m in sys.modules), 'torch was imported'\n"
)


def _cli(*args):
    return subprocess.run([sys.executable, "-c", BLOCK, *args], capture_output=True, text=True, timeout=600)


def test_blocker_really_blocks():
    r = subprocess.run([sys.executable, "-c", BLOCK.replace("from edgeclass.cli import app", "import torch"), "x"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "blocked in this test" in r.stderr and "ModuleNotFoundError" in r.stderr


def test_run_info_quantize_without_torch(tmp_path, trained_model_dir, image_sets):
    r = _cli("run", str(image_sets["run"]), "--model", str(trained_model_dir))
    assert r.returncode == 0, r.stderr
    assert len(read_csv(r.stdout)) == 12
    r = _cli("info", str(trained_model_dir))
    assert r.returncode == 0, r.stderr
    assert "circle" in r.stdout
    md = fp32_only_copy(trained_model_dir, tmp_path / "m")
    r = _cli("quantize", str(md), "--calibration", str(image_sets["calibration"]), "--subset-size", "20", "--max-drop", "100",
             "--fast-bias-correction")  # (full bias correction is OpenVINO-only too: tested with torch about)
    assert r.returncode == 0, r.stderr
    assert (md / "model_int8.xml").exists()


def test_convert_without_torch_explains_the_extra(tmp_path):
    r = _cli("convert", "--no-int8", "-o", str(tmp_path / "m"))
    assert r.returncode == 2
    assert "edgeclass[convert]" in r.stderr
