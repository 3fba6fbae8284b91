"""benchmarks/ runs as a package (``python -m benchmarks.NAME`` from the repository root): no
search path set by hand, nothing imported from tests/, and every script named in its README."""

from __future__ import annotations

import ast
import importlib

from conftest import REPO

FOLDER = REPO / "benchmarks"
SCRIPTS = sorted(p for p in FOLDER.glob("*.py") if not p.name.startswith("_"))


def _imported(path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_benchmarks_set_no_search_path_and_import_nothing_from_tests():
    assert SCRIPTS
    for path in [*SCRIPTS, FOLDER / "_common.py"]:
        assert "sys.path" not in path.read_text(), path.name
        assert not [n for n in _imported(path) if n.split(".")[0] in ("tests", "conftest", "streams")], path.name


def test_every_script_imports_as_a_module_and_is_in_the_readme(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))  # what `python -m` from the repository root gives
    readme = (FOLDER / "README.md").read_text()
    for path in SCRIPTS:
        importlib.import_module(f"benchmarks.{path.stem}")
        assert f"`{path.name}" in readme, f"{path.name} is not in benchmarks/README.md"
