"""The package's annotations are checked (mypy, configured in pyproject.toml's [tool.mypy]): a
wrong annotation is a failure here, not a surprise for a library user whose checker reads
edgeclass's ``py.typed``."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import CACHE, REPO


def test_mypy_finds_no_errors():
    """About 10 s from a cold cache (tests/.cache/mypy), under a second warm."""
    r = subprocess.run([sys.executable, "-m", "mypy", "edgeclass", "--cache-dir", str(CACHE / "mypy")],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    if "No module named mypy" in r.stderr:
        raise AssertionError("mypy is not installed: pip install -e '.[test]' (the README's test set-up)")
    assert r.returncode == 0, f"mypy (python -m mypy edgeclass) found errors:\n{r.stdout}{r.stderr}"


def test_the_package_ships_its_types():
    assert (REPO / "edgeclass" / "py.typed").is_file()
    package_data = (REPO / "pyproject.toml").read_text().split("[tool.setuptools.package-data]", 1)[1].split("\n[")[0]
    assert '"py.typed"' in package_data  # PEP 561: in the wheel


def test_video_names_are_typed_and_lazy():
    """``edgeclass.media.video`` hands on the readers' names on first use (an images-only run does
    not import them) and says which: the ``TYPE_CHECKING`` imports mirror ``_LAZY``."""
    code = ("import sys\n"
            "import edgeclass.media.video as video\n"
            "assert not any(m in sys.modules for m in ('edgeclass.media.video.files', 'edgeclass.media.video.live'))\n"
            "from edgeclass.media.video import files, live, options\n"
            "homes = {'files': files, 'live': live, 'options': options}\n"
            "for name in video.__all__:\n"
            "    home = homes[video._LAZY.get(name, 'options')]\n"
            "    assert getattr(video, name) is getattr(home, name), name\n"
            "try:\n"
            "    video.no_such_name\n"
            "except AttributeError:\n"
            "    print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    from edgeclass.media import video

    tree = ast.parse((REPO / "edgeclass" / "media" / "video" / "__init__.py").read_text())
    checked = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    seen = {alias.name: node.module for block in checked for node in block.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}
    assert seen == {name: f"edgeclass.media.video.{home}" for name, home in video._LAZY.items()}


def test_the_front_doors_stub_lists_its_lazy_exports():
    """mypy reads ``edgeclass/__init__.pyi``, Python ``__init__.py``'s ``_HOMES``: the two name the
    same exports from the same modules, and each name resolves (in a fresh interpreter)."""
    import edgeclass

    stub = ast.parse((REPO / "edgeclass" / "__init__.pyi").read_text())
    typed = {alias.asname or alias.name: node.module for node in stub.body if isinstance(node, ast.ImportFrom)
             for alias in node.names}
    assert typed == edgeclass._HOMES
    assert edgeclass.__all__ == ["__version__", *edgeclass._HOMES]
    code = ("import edgeclass, importlib\n"
            "for name, home in edgeclass._HOMES.items():\n"
            "    assert getattr(edgeclass, name) is getattr(importlib.import_module(home), name), name\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
