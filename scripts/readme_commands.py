#!/usr/bin/env python
"""Print one of the README's two commands, as a newcomer would paste it, so that CI runs the very
text the README shows (`.ci/run`): `main` (set up and run the main job; the line that sets IMAGES
is left out, CI sets it) or `tests`. A README without the marked block is an error (exit 1).

The blocks are the fenced ```bash blocks that follow `<!-- readme-command: NAME -->`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def command(name: str, text: str) -> str:
    match = re.search(rf"<!-- readme-command: {re.escape(name)} -->\s*```bash\n(.*?)```", text, re.S)
    if not match:
        raise SystemExit(f"README.md has no block marked <!-- readme-command: {name} -->")
    lines = [line for line in match.group(1).splitlines() if line.strip() and not line.startswith("IMAGES=")]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("main", "tests"):
        raise SystemExit("usage: readme_commands.py main|tests")
    print(command(sys.argv[1], README.read_text(encoding="utf-8")))
