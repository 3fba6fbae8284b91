"""docs/ describes the CLI as it is: the command reference is generated, and stale is a failure."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_command_reference_is_current():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "make_docs.py"), "--check"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr + "\nrun: python scripts/make_docs.py"


def test_every_option_help_shows_is_in_the_reference():
    import typer

    from edgeclass.cli import app

    text = (REPO / "docs" / "commands.md").read_text()
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        section = text.split(f"## `edgeclass {name}`", 1)[1].split("\n## ", 1)[0]
        for p in cmd.params:
            for opt in getattr(p, "opts", []):
                if opt.startswith("-"):
                    assert f"`{opt}`" in section, (name, opt)


def test_readme_is_short_and_points_at_docs():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, page.name
