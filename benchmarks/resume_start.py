"""What a `--resume` run costs before it classifies anything, on an output of N rows.

edgeclass 0.1 re-read, rewrote and fsynced the whole CSV and journal on every resumed run
(O(rows) written: log shippers and `tail -F` saw a new file every 5 minutes); now the journal is
read and the output only cut back in place when its tail is torn. Prints both, measured in one
run, with the 0.1 code taken from git (``git show <rev>:edgeclass/run/resume.py``).

    python benchmarks/resume_start.py --rows 20000 --old-rev 4a7111a
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeclass.results import Prediction, Result, Status  # noqa: E402
from edgeclass.run.output import family, open_writer  # noqa: E402
from edgeclass.run.journal import Journal, Record, source_key  # noqa: E402
from edgeclass.run.resume import open_resume  # noqa: E402


def _old_modules(rev: str) -> types.ModuleType:
    """edgeclass 0.1's resume module, with its CSV module, loaded from git."""
    def load(name: str, path: str, replace: dict[str, str]) -> types.ModuleType:
        src = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout
        for a, b in replace.items():
            src = src.replace(a, b)
        mod = types.ModuleType(name)
        sys.modules[name] = mod
        exec(compile(src, path, "exec"), mod.__dict__)
        return mod

    load("old_csvout", "edgeclass/run/csvout.py", {})
    return load("old_resume", "edgeclass/run/resume.py", {"edgeclass.run.csvout": "old_csvout"})


def _result(path: str) -> Result:
    return Result(path, Status.OK, "", (Prediction(1, "square", 0.9), Prediction(2, "triangle", 0.05)))


def _bytes_written(fn) -> tuple[float, int]:
    io0 = int(Path(f"/proc/{os.getpid()}/io").read_text().split("wchar: ")[1].split()[0])
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    io1 = int(Path(f"/proc/{os.getpid()}/io").read_text().split("wchar: ")[1].split()[0])
    return dt, io1 - io0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--old-rev", default="4a7111a")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files = []
        for i in range(args.rows):
            p = d / "in" / f"{i // 1000:03d}" / f"img{i:06d}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x")
            files.append(str(p))
        # the new layout: output + journal written through the real writers
        new = d / "new.csv"
        writer, journal = open_writer(new, "csv", 2), Journal(d / "new.csv.journal", 0)
        for f in files:
            writer.append(_result(f))
            journal.add(Record("D", writer.position(), source_key(f), "ok"))
        writer.close()
        journal.close()
        # the 0.1 layout: the same CSV, and its journal lines
        old = _old_modules(args.old_rev)
        old_out = d / "old.csv"
        old_out.write_bytes(new.read_bytes())
        with open(d / "old.csv.journal", "w", encoding="utf-8") as fh:
            for f in files:
                fh.write(old.journal_line(f, old.file_key(f)))
        size = new.stat().st_size
        t_new, w_new = _bytes_written(lambda: open_resume(new, family("csv"), 2))
        t_old, w_old = _bytes_written(lambda: old.prepare_resume(old_out, 2))
        print(f"rows {args.rows}, output {size / 1e6:.1f} MB")
        print(f"resume start, 0.1 (rewrite): {t_old * 1000:8.1f} ms, {w_old / 1e6:6.2f} MB written")
        print(f"resume start, now (append):  {t_new * 1000:8.1f} ms, {w_new / 1e6:6.2f} MB written")
        print(f"ratio of bytes written: {w_new / max(w_old, 1):.4f}; time ratio now/0.1: {t_new / t_old:.2f}")


if __name__ == "__main__":
    main()
