#!/usr/bin/env python
"""Write docs/commands.md from the CLI itself: every command, argument and option as `--help`
shows them (names, type, default, help text, panel), and the exit-code table.

    python scripts/make_docs.py          # rewrite docs/commands.md
    python scripts/make_docs.py --check  # exit 1 when docs/commands.md is stale (tests/unit/test_docs.py)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import typer

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "docs" / "commands.md"

HEADER = """# Command reference

Generated from the CLI by `python scripts/make_docs.py`; `tests/unit/test_docs.py` fails when
it is stale. The prose pages say when and why to use each option; this page says what exists.
"""


def _type_name(param) -> str:
    """Duck-typed: Typer vendors its own copy of click's parameter types."""
    t = param.type
    if getattr(param, "is_flag", False):
        return "flag"
    if hasattr(t, "choices"):
        return " \\| ".join(getattr(c, "value", c) for c in t.choices)
    name = getattr(t, "name", "") or type(t).__name__
    if hasattr(t, "min") and hasattr(t, "max"):
        base = "integer" if "int" in name else "number"
        lo = "" if t.min is None else f"{t.min} ≤ "
        hi = "" if t.max is None else f" ≤ {t.max}"
        return f"{base} ({lo}x{hi})"
    return {"str": "text", "text": "text", "int": "integer", "integer": "integer", "float": "number"}.get(name, name)


def _names(param) -> str:
    if param.param_type_name == "argument":
        return f"`{param.name.upper()}`" + (" …" if param.nargs == -1 else "")
    names = list(param.opts) + [o for o in param.secondary_opts]
    return ", ".join(f"`{n}`" for n in names)


def _default(param) -> str:
    """The default as `--help` shows it: an --x/--no-x flag by the name in force (``no-resume``)."""
    d = param.default
    secondary = getattr(param, "secondary_opts", None)
    if isinstance(d, bool) and secondary:
        return f"`{(param.opts[0] if d else secondary[0]).lstrip('-')}`"
    if d is None or d == () or d == [] or (getattr(param, "is_flag", False) and d is False):
        return ""
    if isinstance(d, bool):
        return "on" if d else "off"
    return f"`{getattr(d, 'value', d)}`"


def _cell(text: str | None) -> str:
    """Help text as `--help` prints it: Rich markup's escaped brackets (``\\[ray]``) shown plain."""
    return " ".join((text or "").replace("\\[", "[").split()).replace("|", "\\|")


def command_section(name: str, cmd) -> list[str]:
    lines = [f"## `edgeclass {name}`", ""]
    help_text = (cmd.help or "").strip()
    if help_text:
        lines += [help_text, ""]
    panels: dict[str, list] = {}
    for p in cmd.params:
        if getattr(p, "hidden", False) or p.name == "help":
            continue
        panels.setdefault(getattr(p, "rich_help_panel", None) or "", []).append(p)
    for panel, params in panels.items():
        if panel:
            lines += [f"**{panel}**", ""]
        lines += ["| argument / option | type | default | what it does |", "| --- | --- | --- | --- |"]
        for p in params:
            required = " (required)" if p.required and p.param_type_name == "option" else ""
            lines.append(f"| {_names(p)}{required} | {_type_name(p)} | {_default(p)} | {_cell(getattr(p, 'help', ''))} |")
        lines.append("")
    if cmd.epilog:
        lines += [_cell(cmd.epilog), ""]
    return lines


def render() -> str:
    from edgeclass.cli import app
    from edgeclass.errors import EXIT_CODES

    group = typer.main.get_command(app)
    lines = [HEADER]
    lines += ["| command | what it does |", "| --- | --- |"]
    for name, cmd in group.commands.items():
        lines.append(f"| [`{name}`](#edgeclass-{name}) | {_cell(cmd.get_short_help_str(200))} |")
    lines += ["", "## Exit codes", "", "| code | meaning |", "| --- | --- |"]
    lines += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES]
    lines.append("")
    for name, cmd in group.commands.items():
        lines += command_section(name, cmd)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = ap.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(REPO)} is stale: run python scripts/make_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
