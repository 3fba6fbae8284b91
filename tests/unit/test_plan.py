"""plan_run, in process and without a model: every up-front check refuses before a model is looked
for or an input read, with the CLI's exit code; defaults are resolved once, in the plan."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

from edgeclass.errors import EXIT_MODEL, EXIT_OUTPUT, EXIT_USAGE, EdgeclassError
from edgeclass.run.plan import RunChoices, plan_run


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    return d


def refused(folder: Path, **choices) -> EdgeclassError:
    """plan_run's refusal; the model folder does not exist, so reaching it would be exit 3."""
    with pytest.raises(EdgeclassError) as info:
        plan_run(str(folder), model=folder.parent / "no-model-here", **choices)
    return info.value


USAGE = [
    ({"resume": True}, "--resume needs --output FILE"),
    ({"format": "parquet"}, "--format parquet needs --output FILE"),
    ({"format": "xml"}, "unknown output format 'xml'"),
    ({"keyframes": True, "every_frame": 5}, "cannot be combined with --every-frame"),
    ({"redo_other_models": True, "output": "o.csv"}, "--redo-other-models goes with --resume"),
    ({"rescan": True, "output": "o.csv"}, "--rescan goes with --resume"),
    ({"copy_into": "a", "link_into": "b"}, "--copy-into and --link-into: choose one"),
    ({"move": True}, "--move goes with --copy-into"),
    ({"hardlink": True}, "--hardlink goes with --link-into"),
    ({"ray": "not an address"}, "expected auto, local or HOST:PORT"),
    ({"top_k": 0}, "top-k must be at least 1"),
    ({"top_k": 1001}, "top-k must be at most 1000"),
    ({"min_score": 1.5}, "min-score must be between 0 and 1"),
    ({"threads": 0}, "threads must be at least 1"),
    ({"precision": "fp64"}, "precision must be one of"),
]


@pytest.mark.parametrize("choices, message", USAGE, ids=[m for _, m in USAGE])
def test_usage_errors_exit_2_before_the_model(folder, tmp_path, choices, message):
    choices = {k: tmp_path / v if k in ("output", "copy_into", "link_into") else v for k, v in choices.items()}
    exc = refused(folder, **choices)
    assert exc.exit_code == EXIT_USAGE and message in str(exc)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # no sorting folder made


def test_the_parquet_extra_is_asked_for_when_missing(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    exc = refused(folder, output=tmp_path / "o.parquet")
    assert exc.exit_code == EXIT_USAGE and "pip install 'edgeclass[parquet]'" in str(exc)


def test_ray_missing_says_how_to_install_it(folder, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    exc = refused(folder, ray="auto")
    assert exc.exit_code == EXIT_USAGE and "pip install 'edgeclass[ray]'" in str(exc)


@pytest.mark.parametrize("what", ["output", "summary_json", "metrics_file"])
def test_unwritable_outputs_exit_6_before_the_model(folder, tmp_path, what):
    for bad in (tmp_path, Path("/proc/edgeclass/x.out")):  # a directory; a parent that cannot be made
        exc = refused(folder, **{what: bad})
        assert exc.exit_code == EXIT_OUTPUT and str(bad) in str(exc)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anything")
def test_an_existing_read_only_output_exits_6(folder, tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("")
    out.chmod(0o444)
    exc = refused(folder, output=out)
    assert exc.exit_code == EXIT_OUTPUT and "permission denied" in str(exc)


def test_summary_json_and_metrics_parents_are_not_made(folder, tmp_path):
    for what in ("summary_json", "metrics_file"):
        exc = refused(folder, **{what: tmp_path / "missing" / "x"})
        assert exc.exit_code == EXIT_OUTPUT
    assert not (tmp_path / "missing").exists()


def test_a_refusal_after_the_metrics_check_is_written_to_the_metrics_file(folder, tmp_path):
    prom = tmp_path / "m.prom"
    exc = refused(folder, metrics_file=prom, resume=True)
    assert exc.exit_code == EXIT_USAGE and "edgeclass_exit_code 2" in prom.read_text()


def test_outputs_are_checked_before_the_other_options(folder, tmp_path):
    exc = refused(folder, output=tmp_path, keyframes=True, every_frame=2)
    assert exc.exit_code == EXIT_OUTPUT


def test_a_missing_model_is_exit_3_after_the_checks(folder):
    assert refused(folder).exit_code == EXIT_MODEL


def test_defaults_are_resolved_once_in_the_plan(folder, tmp_path, monkeypatch):
    from edgeclass.run.output import FORMATS

    model = tmp_path / "m"
    model.mkdir()
    (model / "model_fp32.xml").write_text("<net/>")  # a model folder (its IR is read by classify)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    plan = plan_run(folder, model=model, output=tmp_path / "o.jsonl", threads=3)
    assert plan.options.format is FORMATS["jsonl"] and plan.options.output == tmp_path / "o.jsonl"
    assert (plan.options.workers, plan.options.video.decoder_threads, plan.engine.threads) == (3, 3, 3)
    assert plan.engine.cache_dir == tmp_path / "cache" / "edgeclass" / "ov_cache"
    assert plan.precision_defaulted and plan.ray is None and plan.options.inputs == (str(folder),)
    plan = plan_run([folder, "x.jpg"], model=model, no_cache=True, precision="fp32")
    assert plan.options.format is FORMATS["csv"] and plan.engine.cache_dir is None
    assert plan.options.workers == len(os.sched_getaffinity(0)) and plan.options.video.decoder_threads == 0
    assert not plan.precision_defaulted and plan.options.inputs == (str(folder), "x.jpg")


def test_the_cli_defaults_are_the_library_defaults():
    """`edgeclass run`'s options and plan_run's choices: the same names, the same defaults."""
    from edgeclass.cli.running import run

    cli = {name: p.default for name, p in inspect.signature(run).parameters.items()}
    renamed = {"output_format": "format", "ray_address": "ray"}
    cli_only = {"quiet", "show_summary", "inputs", "verbose"}  # the library leaves the process's stderr alone
    for name, default in cli.items():
        if name not in cli_only:
            library = getattr(RunChoices, renamed.get(name, name))
            assert (tuple(default) if isinstance(default, list) else default) == library, name  # repeatable: a tuple


def test_planning_comes_before_opencv_loads():
    """OpenCV reads its pixel limit (plan_run's max_pixels) once, when it is imported."""
    import subprocess
    import sys

    code = "import sys, edgeclass; edgeclass.plan_run; assert 'cv2' not in sys.modules, 'cv2 imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
