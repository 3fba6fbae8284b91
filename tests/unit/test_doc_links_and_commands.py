"""README.md and docs/ stay true: every relative link and anchor resolves, and every `edgeclass …`
command line they show parses against the real CLI (Typer's own parser; nothing is run)."""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

import pytest
import typer

from conftest import REPO

PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
SHELL_STOPS = {"&&", "||", "|", ";", ">", ">>", "2>", "<", "#"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _outside_code(page.read_text(encoding="utf-8")):
        if line.startswith("#"):
            base = slug(line.lstrip("#"))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    out.update(re.findall(r'<a (?:id|name)="([^"]+)"', page.read_text(encoding="utf-8")))
    return out


def _lines(text: str, in_code: bool):
    """The lines inside fenced code blocks (``in_code``), or the lines outside them."""
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced == in_code:
            yield line


def _outside_code(text: str):
    return _lines(text, in_code=False)


def _code_lines(text: str):
    return _lines(text, in_code=True)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page):
    text = "\n".join(_outside_code(page.read_text(encoding="utf-8")))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to missing {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{page.name}: no heading for #{anchor} in {dest.name}"


def _command_lines(page: Path):
    for line in _code_lines(page.read_text(encoding="utf-8")):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for i, word in enumerate(words):
            if word.endswith("edgeclass") and i + 1 < len(words) and not word.startswith("-"):
                args = []
                for w in words[i + 1:]:
                    if w in SHELL_STOPS:
                        break
                    args.append(w)
                yield line, args


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_line_parses(page):
    from edgeclass.cli import app

    group = typer.main.get_command(app)
    for line, args in _command_lines(page):
        if not args or args[0].startswith("-"):
            continue
        assert args[0] in group.commands, f"{page.name}: unknown command in: {line}"
        cmd = group.commands[args[0]]
        try:
            cmd.make_context(args[0], args[1:])
        except typer.BadParameter as exc:  # Typer's own click: its exception classes
            assert "does not exist" in str(exc), f"{page.name}: {line}\n{exc}"  # paths of the user's box
        except typer.TyperException as exc:
            raise AssertionError(f"{page.name}: {line}\n{exc}") from exc
