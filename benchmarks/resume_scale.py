"""What a cron `--resume` run costs when the output already holds N inputs and a few are new.

Builds a folder of N inputs (empty files, so cheap to make, plus a few real images) in dated
subfolders, and its output as a finished `--resume` run would have left it, written through the
results ledger itself (no image is classified to build it), then settled by one `--resume` run
(a full pass: it lists every folder and records them in the journal). Then times, each as a real
``edgeclass run`` process (wall time, peak RSS):

* a bare ``os.walk`` + ``os.stat`` of the folder (in a child process, the floor);
* ``--resume`` with ``--new`` images in the newest subfolder (that folder and the top one are
  listed, the others are unchanged: only stat'ed);
* ``--resume`` with them in a new subfolder;
* ``--resume --rescan`` with them in the newest subfolder (every folder listed, every file
  stat'ed and looked up: the full pass a day, or after a file was replaced in place);
* the same command over an empty output, stopped after the same time (``--max-runtime``): the
  RSS a run has without a done set; and on an empty folder: the start-up.

Each run starts from the same files (output and journal restored). ``--first-run`` also times
(and with ``--profile`` profiles) the first run over the folder, which classifies every input.

    python -m benchmarks.resume_scale --inputs 1000000 --model DIR
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2

from benchmarks._common import cpu_name

WALK = ("import os,sys\nn=0\nfor d,_,fs in os.walk(sys.argv[1]):\n    for f in fs:\n"
        "        os.stat(os.path.join(d,f)); n+=1\nprint(n)\n")
DAY_S = 86400
OPEN = ("import sys, time\nfrom pathlib import Path\nfrom edgeclass.run.output import FORMATS\n"
        "from edgeclass.run.resume import open_resume\nt = time.perf_counter()\n"
        "state, journal = open_resume(Path(sys.argv[1]), FORMATS['csv'], 1, 'x')\n"
        "print(f'{time.perf_counter() - t:.3f} s, {len(state.done)} inputs, '\n"
        "      f'done set {state.done.nbytes() / 1e6:.1f} MB')\n")


def build_folder(root: Path, n: int, per_dir: int, images: int) -> list[Path]:
    """``n`` inputs in subfolders of ``per_dir`` (one a day, their mtimes days apart, as a camera
    leaves them); ``images`` of them real JPEGs, the rest empty files. Returns the subfolders."""
    from scripts import train_test_model
    import numpy as np

    rng = np.random.default_rng(0)
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(train_test_model.make_image(1, rng, (96, 128)), cv2.COLOR_RGB2BGR))[1]
    step = max(n // max(images, 1), 1)
    dirs = []
    for i in range(n):
        d = root / f"day{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
            dirs.append(d)
        with open(d / f"snap{i:08d}.jpg", "wb") as fh:
            if i % step == 0:
                fh.write(jpeg.tobytes())
    now = time.time()
    for k, d in enumerate(dirs):  # older days are older folders
        t = now - (len(dirs) - k) * DAY_S
        for f in os.scandir(d):
            os.utime(f.path, (t, t))
        os.utime(d, (t, t))
    return dirs


def build_output(folder: Path, out: Path, model_dir: Path, top_k: int) -> float:
    """The output and journal of a finished `--resume` run over ``folder``, written through the
    results ledger (rows as Results: `empty` for empty files, a made-up prediction otherwise)."""
    from edgeclass.media.inputs import expand_inputs
    from edgeclass.modelfiles.folder import ModelDir
    from edgeclass.results import Prediction, Result, Status
    from edgeclass.run.journal import file_key
    from edgeclass.run.ledger import open_ledger

    model_id = ModelDir(model_dir).model_id("fp32")
    t0 = time.perf_counter()
    ledger = open_ledger(out, "csv", top_k, True, None, lambda m: None, model_id)
    completed: set[str] = set()
    for source in expand_inputs([str(folder)]):
        key = file_key(source.path)
        if key.size == 0:
            result = Result(source.path, Status.EMPTY, "empty file")
        else:
            result = Result(source.path, Status.OK, "", (Prediction(1, "square", 0.9),))
        completed.add(source.path)
        ledger.append(result, key, completed)
        completed.discard(source.path)
    ledger.commit(completed, clean=True)
    ledger.close()
    return time.perf_counter() - t0


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MB, CPU seconds: user + system) of one child process. The peak is
    the child's own ``VmHWM`` (read every 20 ms): ``ru_maxrss`` would carry this process's RSS
    over the child's exec."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while True:
        try:
            status_text = Path(f"/proc/{proc.pid}/status").read_text()
            peak = max(peak, int(status_text.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            pass
        waited, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if waited:
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1, 124):
        sys.exit(f"{' '.join(cmd)} failed ({code}):\n{err[-3000:]}")
    return wall, peak / 1024, usage.ru_utime + usage.ru_stime


def add_new(folder: Path, n: int, tag: str, subfolder: str | None = None) -> list[Path]:
    """``n`` new images in the newest subfolder (or in a new ``subfolder``)."""
    from scripts import train_test_model
    import numpy as np

    rng = np.random.default_rng(len(tag))
    newest = sorted(p for p in folder.iterdir() if p.is_dir())[-1]
    if subfolder is not None:
        newest = folder / subfolder
        newest.mkdir()
    out = []
    for i in range(n):
        img = cv2.cvtColor(train_test_model.make_image(i % 4, rng, (96, 128)), cv2.COLOR_RGB2BGR)
        p = newest / f"new-{tag}-{i:03d}.jpg"
        cv2.imwrite(str(p), img)
        out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=100_000, help="inputs already in the output")
    ap.add_argument("--per-dir", type=int, default=5000, help="inputs per subfolder (one a day)")
    ap.add_argument("--images", type=int, default=100, help="real images among the inputs (the rest: empty files)")
    ap.add_argument("--new", type=int, default=10, help="new images the measured runs find")
    ap.add_argument("--model", type=Path, required=True, help="a model folder (its FP32 IR is used)")
    ap.add_argument("--work", type=Path, default=None, help="where to build (default: a temporary folder)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--first-run", action="store_true", help="also time the first run (classifies every input)")
    ap.add_argument("--profile", type=Path, default=None, help="cProfile the --resume run (and first run) into DIR")
    args = ap.parse_args()
    if not (args.model / "model_fp32.xml").exists():
        sys.exit(f"{args.model} holds no model_fp32.xml: give a model folder (edgeclass convert)")
    work = args.work or Path(tempfile.mkdtemp(prefix="resume-scale-"))
    try:
        measure(args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> None:
    folder, out = work / "in", work / "out.csv"
    print(f"CPU: {cpu_name()}; {os.cpu_count()} CPUs; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    t0 = time.perf_counter()
    if not folder.exists():
        build_folder(folder, args.inputs, args.per_dir, args.images)
    print(f"built {args.inputs} inputs in {time.perf_counter() - t0:.1f} s")
    base = [sys.executable, "-m", "edgeclass", "run", str(folder), "--model", str(args.model), "--precision", "fp32",
            "-k", "1", "-q"]
    if args.first_run:
        first_run(args, base, work)
    journal = out.with_name(out.name + ".journal")
    if not out.exists():
        print(f"output built through the ledger in {build_output(folder, out, args.model, 1):.1f} s: "
              f"{out.stat().st_size / 1e6:.1f} MB, journal {journal.stat().st_size / 1e6:.1f} MB "
              f"({journal.stat().st_size / args.inputs:.0f} bytes/input)")
    opened = subprocess.run([sys.executable, "-c", OPEN, str(out)], capture_output=True, text=True)
    print(f"journal opened (open_resume, in a child): {opened.stdout.strip() or opened.stderr[-500:]}")
    settle(folder, out, base)
    saved = work / "saved"
    saved.mkdir(exist_ok=True)
    for f in (out, journal):
        shutil.copy2(f, saved / f.name)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for rep in range(args.repeat):
        one_round(args, base, work, rows, profile=args.profile if rep == 0 else None, tag=f"r{rep}")
    restore(work, saved)
    report(args, rows)


def settle(folder: Path, out: Path, base: list[str]) -> None:
    """The first `--resume` run over the built output: every folder listed, then recorded in the
    journal (once their times are past the grace window: edgeclass/run/folders.py)."""
    from edgeclass.run.folders import GRACE_NS

    newest = max(max(d.stat().st_mtime, d.stat().st_ctime) for d in [folder, *folder.iterdir()])
    time.sleep(max(0.0, newest + GRACE_NS / 1e9 + 1 - time.time()))
    wall, rss, _ = timed(base + ["-o", str(out), "--resume"])
    journal = out.with_name(out.name + ".journal")
    folders = sum(line.startswith(b"F\t") for line in journal.read_bytes().splitlines())
    print(f"settling --resume run (a full pass; {folders} folders recorded): {wall:.2f} s, peak RSS {rss:.0f} MB")


def first_run(args: argparse.Namespace, base: list[str], work: Path) -> None:
    cmd = base + ["-o", str(work / "first.csv"), "--resume"]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        cmd[1:3] = ["-m", "cProfile", "-o", str(args.profile / "first-run.prof"), "-m", "edgeclass"]
    wall, rss, cpu = timed(cmd)
    print(f"first run ({args.inputs} inputs classified): {wall:.2f} s ({args.inputs / wall:,.0f} rows/s, "
          f"CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")


def one_round(args: argparse.Namespace, base: list[str], work: Path, rows: dict, profile: Path | None,
              tag: str) -> None:
    """The walk, the --resume runs (each from the saved output): new files in the newest folder,
    in a new folder, with --rescan; the empty-output run, the start-up."""
    folder, out = work / "in", work / "out.csv"
    new = add_new(folder, args.new, tag)
    rows.setdefault("bare os.walk + os.stat", []).append(timed([sys.executable, "-c", WALK, str(folder)]))
    restore(work, work / "saved")
    cmd = base + ["-o", str(out), "--resume"]
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
        cmd[1:3] = ["-m", "cProfile", "-o", str(profile / "resume.prof"), "-m", "edgeclass"]
    rows.setdefault("--resume, new in the newest folder", []).append(timed(cmd))
    restore(work, work / "saved")
    rows.setdefault("--resume --rescan (every folder listed)", []).append(timed(base + ["-o", str(out), "--resume",
                                                                                       "--rescan"]))
    for p in new:
        p.unlink()
    restore(work, work / "saved")
    new = add_new(folder, args.new, tag, subfolder=f"new-{tag}")
    rows.setdefault("--resume, new in a new folder", []).append(timed(base + ["-o", str(out), "--resume"]))
    limit = max(2, round(max(w for w, _, _ in rows["--resume --rescan (every folder listed)"])))
    rows.setdefault(f"same command, empty output (stopped after {limit} s)", []).append(
        timed(base + ["-o", str(fresh(work, "empty.csv")), "--resume", "--max-runtime", str(limit)]))
    nothing = work / "nothing"
    nothing.mkdir(exist_ok=True)
    rows.setdefault("start-up: the same command on an empty folder", []).append(
        timed([*base[:4], str(nothing), *base[5:], "-o", str(fresh(work, "nothing.csv")), "--resume"]))
    for p in new:
        p.unlink()
    new[0].parent.rmdir()


def fresh(work: Path, name: str) -> Path:
    for f in work.glob(name + "*"):
        f.unlink()
    return work / name


def report(args: argparse.Namespace, rows: dict) -> None:
    floor = min(w for w, _, _ in rows["bare os.walk + os.stat"])
    floor_cpu = min(c for _, _, c in rows["bare os.walk + os.stat"])
    empty_rss = min(r for k, v in rows.items() if k.startswith("same command") for _, r, _ in v)
    print(f"\n{args.inputs:,} inputs done, {args.new} new, {-(-args.inputs // args.per_dir)} subfolders; "
          f"best of {args.repeat}:")
    print(f"{'':48} {'wall s':>7} {'x walk':>7} {'CPU s':>7} {'x walk':>7} {'peak RSS MB':>12} {'x empty':>8}")
    for label, vals in rows.items():
        wall, rss, cpu = (min(v[i] for v in vals) for i in range(3))
        print(f"{label:48} {wall:7.2f} {wall / floor:7.2f} {cpu:7.2f} {cpu / floor_cpu:7.2f} {rss:12.0f} "
              f"{rss / empty_rss:8.2f}")


def restore(work: Path, saved: Path) -> None:
    for f in work.glob("out.csv*"):
        f.unlink()
    for f in saved.iterdir():
        shutil.copy2(f, work / f.name)


if __name__ == "__main__":
    main()
