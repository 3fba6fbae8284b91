"""What the `model` column costs: the model id (once per run), and the one-time upgrade of an
output written by the release before model ids (N rows, its journal), by the real resume code.

    python benchmarks/model_column.py --rows 100000 [--model models/NAME]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgeclass.run.output import family  # noqa: E402
from edgeclass.run.output.columns import legacy_header  # noqa: E402
from edgeclass.run.journal import journal_path, source_key  # noqa: E402
from edgeclass.run.resume import open_resume  # noqa: E402


def _legacy_output(d: Path, rows: int, top_k: int = 2) -> Path:
    """An output + journal as the release before model ids wrote them (``run --resume -k 2``)."""
    out = d / "old.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(legacy_header(top_k))
    data = bytearray(buf.getvalue().encode())
    journal = ["edgeclass-journal 2"]
    for i in range(rows):
        p = d / "in" / f"{i // 1000:03d}" / f"img{i:06d}.jpg"
        if i % 1000 == 0:
            p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([str(p), "", "", "ok", "", 1, "square", "0.900000", 2,
                                                       "triangle", "0.050000"])
        data += buf.getvalue().encode()
        k = source_key(str(p))
        journal.append(f"D\t{len(data)}\t{k.size}\t{k.mtime_ns}\t{k.ctime_ns}\tok\t{p}")
    out.write_bytes(bytes(data))
    journal_path(out).write_text("\n".join(journal) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--model", type=Path, default=None, help="a model folder: time its id (FP32 and INT8)")
    args = ap.parse_args()
    if args.model is not None:
        from edgeclass.modelfiles.folder import ModelDir

        md = ModelDir(args.model)
        for precision in ("fp32", "int8"):
            if md.xml_for(precision).is_file():
                t0 = time.perf_counter()
                mid = md.model_id(precision)
                size = sum(p.stat().st_size for p in (md.xml_for(precision), md.xml_for(precision).with_suffix(".bin")))
                print(f"model id {mid}: {(time.perf_counter() - t0) * 1000:.1f} ms once per run ({size / 1e6:.1f} MB IR)")
    with tempfile.TemporaryDirectory() as tmp:
        out = _legacy_output(Path(tmp), args.rows)
        size = out.stat().st_size
        t0 = time.perf_counter()
        state, journal = open_resume(out, family("csv"), 2, "m@0123456789ab")
        dt = time.perf_counter() - t0
        journal.close()
        assert state.upgraded == args.rows and len(state.done) == args.rows
        print(f"upgrade of {args.rows} rows ({size / 1e6:.1f} MB CSV + journal): {dt:.2f} s, once "
              f"({os.path.getsize(out) / size:.3f}x the bytes after)")


if __name__ == "__main__":
    main()
