"""scripts/train_test_model.py, which made the committed test models (tests/fixtures/models):
a few steps still train, and write what the fixtures hold, in the layout conftest reads."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import FIXTURES, REPO


def test_the_script_that_made_the_fixtures_still_trains(tmp_path):
    out = tmp_path / "m"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "train_test_model.py"), str(out), "--steps", "2",
                        "--variant", "colours", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (FIXTURES / "colours").iterdir())
    assert (out / "labels.txt").read_text() == (FIXTURES / "colours" / "labels.txt").read_text()
    info = json.loads((out / "train_info.json").read_text())
    assert info["steps"] == 2 and info["variant"] == "colours" and 0 <= info["heldout_accuracy"] <= 1

    import timm
    from safetensors.torch import load_file

    model = timm.create_model("mobilevitv2_050", num_classes=4)
    model.load_state_dict(load_file(str(out / "checkpoint.safetensors")))  # the fixtures' state-dict layout
    fixture = load_file(str(FIXTURES / "colours" / "checkpoint.safetensors"))
    assert {k: v.shape for k, v in load_file(str(out / "checkpoint.safetensors")).items()} == \
        {k: v.shape for k, v in fixture.items()}
