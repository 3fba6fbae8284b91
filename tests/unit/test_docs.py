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


def test_help_text_and_defaults_read_as_in_the_reference():
    """What `--help` prints (Rich markup applied: an unescaped "[ray]" would vanish there) and
    the default it shows (`no-resume` for an off flag) are what docs/commands.md says."""
    import re

    import typer
    from rich.text import Text

    from edgeclass.cli import app

    text = (REPO / "docs" / "commands.md").read_text()
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        section = text.split(f"## `edgeclass {name}`", 1)[1].split("\n## ", 1)[0]
        for p in cmd.params:
            opts = [o for o in getattr(p, "opts", []) if o.startswith("-")]
            if not opts or not p.help or opts == ["--help"]:
                continue
            row = next(line for line in section.splitlines() if line.startswith(f"| `{opts[0]}`"))
            shown = " ".join(Text.from_markup(p.help).plain.split()).replace("|", "\\|")
            assert row.endswith(f"| {shown} |"), (name, opts[0], shown, row)
            if isinstance(p.default, bool) and p.secondary_opts:
                on = (p.opts[0] if p.default else p.secondary_opts[0]).lstrip("-")
                assert re.search(rf"\| `{re.escape(on)}` \|", row), (name, opts[0], row)


def test_the_extension_lists_in_the_docs_are_the_codes():
    import re

    from edgeclass.media.decode import IMAGE_EXTENSIONS
    from edgeclass.media.inputs import VIDEO_EXTENSIONS

    images = {e.lstrip(".") for e in IMAGE_EXTENSIONS}
    running = (REPO / "docs" / "running.md").read_text()
    listed = re.search(r"folders \(recursive, sorted; ([a-z0-9 \n]+) in any case", running).group(1).split()
    assert set(listed) == images
    calibration = (REPO / "calibration" / "README.md").read_text()
    listed = re.search(r"Any of ([a-z0-9, \n]+)\n?\s*\(in any case\)", calibration).group(1).replace(",", " ").split()
    assert set(listed) == images
    video = (REPO / "docs" / "video.md").read_text()
    listed = re.search(r"Video files \(([a-z0-9, ]+);", video).group(1).replace(",", " ").split()
    assert set(listed) == {e.lstrip(".") for e in VIDEO_EXTENSIONS}
