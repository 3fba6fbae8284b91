"""The committed test models are the bytes their pinned hashes say; a changed one fails at once
with the command that regenerates it."""

from __future__ import annotations

import shutil

import pytest

import conftest


@pytest.mark.parametrize("variant", sorted(conftest.FIXTURE_SHA256))
def test_the_committed_fixtures_match_their_pinned_hashes(variant):
    assert (conftest.fixture_model(variant) / "labels.txt").read_text().split() == \
        ["circle", "square", "triangle", "stripes"]


def test_a_changed_fixture_fails_naming_the_script_that_regenerates_it(tmp_path, monkeypatch):
    copy = tmp_path / "models"
    shutil.copytree(conftest.FIXTURES, copy)
    data = bytearray((copy / "shapes" / "checkpoint.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "shapes" / "checkpoint.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(conftest, "FIXTURES", copy)
    with pytest.raises(RuntimeError, match=r"scripts/train_test_model\.py .*--variant shapes"):
        conftest.fixture_model("shapes")
    (copy / "colours" / "checkpoint.safetensors").unlink()
    with pytest.raises(RuntimeError, match="sha256 missing"):
        conftest.fixture_model("colours")
