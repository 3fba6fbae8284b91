"""Cron-grade runs with real processes and real faults: SIGKILL + resume, locks, SIGTERM,
--max-runtime, a filling disk (file-size limit), summaries."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from conftest import read_csv, run_cli, synthetic_photo
from edgeclass.errors import EXIT_LOCKED, EXIT_MAX_RUNTIME, EXIT_OK, EXIT_OUTPUT

N_IMAGES = 240


@pytest.fixture(scope="module")
def many_images(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("many")
    photos = [cv2.imencode(".jpg", cv2.cvtColor(synthetic_photo(1080, 1440, seed=seed), cv2.COLOR_RGB2BGR))[1]
              for seed in range(17)]  # big enough that a run takes seconds
    for i in range(N_IMAGES):
        sub = d / f"part{i % 3}"
        sub.mkdir(exist_ok=True)
        (sub / f"img{i:04d}.jpg").write_bytes(photos[i % 17].tobytes())
    return d


def start(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgeclass", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_rows(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``path`` has at least ``n`` data lines (or the process ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") > n:
            return
        if proc.poll() is not None:
            return
        time.sleep(0.01)
    raise AssertionError("no progress")


def all_sources(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.jpg"))


def test_sigkill_then_resume_gives_every_input_once(many_images, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    args = ("run", str(many_images), "--model", str(trained_model_dir), "-o", str(out), "--resume", "--threads", "1",
            "--full-decode")
    for kill_after in (10, 70, 150):
        proc = start(*args)
        wait_rows(out, kill_after, proc)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    r = run_cli(*args)
    assert r.returncode == EXIT_OK, r.stderr
    rows = read_csv(out)
    sources = [row["source"] for row in rows]
    assert sorted(sources) == all_sources(many_images)  # every input exactly once
    assert all(row["status"] == "ok" for row in rows)
    assert out.read_bytes().endswith(b"\n")
    # a further resume has nothing to do
    r = run_cli(*args, "--summary-json", str(tmp_path / "s.json"))
    assert r.returncode == EXIT_OK
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["skipped_resume"] == N_IMAGES and s["total"] == 0


def test_torn_last_line_is_repaired(many_images, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    args = ("run", str(many_images / "part0"), "--model", str(trained_model_dir), "-o", str(out), "--resume")
    assert run_cli(*args).returncode == EXIT_OK
    data = out.read_bytes()
    lines = data.split(b"\n")
    out.write_bytes(b"\n".join(lines[:-3]) + b"\n" + lines[-3][: len(lines[-3]) // 2])  # last row torn
    r = run_cli(*args)
    assert r.returncode == EXIT_OK, r.stderr
    assert out.read_bytes() == data  # the torn row was dropped and redone: identical file


def test_replaced_file_is_classified_again(tmp_path, trained_model_dir):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        cv2.imwrite(str(d / f"{i}.jpg"), cv2.cvtColor(synthetic_photo(100, 100, seed=i), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.csv"
    args = ("run", str(d), "--model", str(trained_model_dir), "-o", str(out), "--resume")
    assert run_cli(*args).returncode == EXIT_OK
    (d / ".1.jpg.tmp").write_bytes(b"replaced by garbage")
    os.replace(d / ".1.jpg.tmp", d / "1.jpg")  # replaced as rsync and most editors do: the folder changes too
    # (rewritten in place, the folder unchanged: found by --rescan, tests/test_folder_skipping.py)
    r = run_cli(*args, "--summary-json", str(tmp_path / "s.json"))
    rows = read_csv(out)
    assert sorted(row["source"] for row in rows) == sorted(str(p) for p in d.iterdir())
    assert {os.path.basename(row["source"]): row["status"] for row in rows}["1.jpg"] == "corrupt"
    assert json.loads((tmp_path / "s.json").read_text())["skipped_resume"] == 2
    assert r.returncode == 1


def test_second_run_on_same_output_exits_at_once(many_images, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    # the first run reads paths from a pipe we keep open, so it is still running for sure
    first = start("run", "-", "--model", str(trained_model_dir), "-o", str(out), stdin=subprocess.PIPE)
    paths = all_sources(many_images)[:5]
    first.stdin.write("".join(p + "\n" for p in paths))
    first.stdin.flush()
    wait_rows(tmp_path / ".out.csv.partial", 5, first)
    t0 = time.monotonic()
    second = run_cli("run", str(many_images), "--model", str(trained_model_dir), "-o", str(out))
    assert second.returncode == EXIT_LOCKED
    assert f"pid {first.pid}" in second.stderr and "another edgeclass run" in second.stderr
    assert time.monotonic() - t0 < 30
    first.stdin.close()
    assert first.wait(timeout=120) == EXIT_OK
    assert [r["source"] for r in read_csv(out)] == paths  # the second run wrote nothing


def test_lock_of_killed_run_is_taken_over(many_images, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    args = ("run", str(many_images / "part1"), "--model", str(trained_model_dir), "-o", str(out), "--resume")
    proc = start(*args, "--threads", "1", "--full-decode")
    wait_rows(out, 3, proc)
    assert proc.poll() is None
    proc.kill()
    proc.wait()
    r = run_cli(*args)
    assert r.returncode == EXIT_OK, r.stderr
    assert "took over the lock" in r.stderr
    assert len(read_csv(out)) == N_IMAGES // 3


def test_sigterm_stops_cleanly(many_images, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    proc = start("run", str(many_images), "--model", str(trained_model_dir), "-o", str(out), "--threads", "1",
                 "--full-decode", "--summary-json", str(tmp_path / "s.json"))
    wait_rows(tmp_path / ".out.csv.partial", 20, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err
    # not finished: the previous results (none here) are not replaced; the rows are beside them
    assert not out.exists() and ".out.csv.partial" in err and "was not replaced" in err
    rows = read_csv(tmp_path / ".out.csv.partial")  # complete rows only
    assert 20 <= len(rows) < N_IMAGES
    assert [r["source"] for r in rows] == all_sources(many_images)[: len(rows)]
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["stopped_by"] == "SIGTERM" and s["total"] == len(rows) and s["exit_code"] == 143


def test_max_runtime_even_when_stdin_stalls(many_images, trained_model_dir, tmp_path):
    """Paths arrive on a pipe that stays open: --max-runtime still ends the run on time."""
    out = tmp_path / "out.csv"
    proc = start("run", "-", "--model", str(trained_model_dir), "-o", str(out), "--max-runtime", "2",
                 stdin=subprocess.PIPE)
    for p in all_sources(many_images)[:5]:
        proc.stdin.write(p + "\n")
    proc.stdin.flush()  # and then nothing more, without closing the pipe
    t0 = time.monotonic()
    try:
        proc.wait(timeout=60)
    finally:
        proc.stdin.close()
    err = proc.stderr.read()
    assert proc.returncode == EXIT_MAX_RUNTIME, err
    assert time.monotonic() - t0 < 30
    assert "stopped by max-runtime" in err
    assert len(read_csv(tmp_path / ".out.csv.partial")) == 5 and not out.exists()


def _quiet_backlog_run(model: Path, paths: list[str], out: Path) -> tuple[int, str]:
    """``run - -q --max-runtime 2`` fed ``paths`` on a pipe that then stalls (stays open)."""
    proc = start("run", "-", "--model", str(model), "-o", str(out), "--resume", "-q", "--max-runtime", "2",
                 stdin=subprocess.PIPE)
    proc.stdin.write("".join(p + "\n" for p in paths))
    proc.stdin.flush()
    try:
        proc.wait(timeout=120)
    finally:
        proc.stdin.close()
    return proc.returncode, proc.stderr.read()


def test_quiet_max_runtime_without_failures_prints_nothing(many_images, trained_model_dir, tmp_path):
    """-q: a backlog worked off over several cron runs (each stopped by --max-runtime, exit 124)
    does not mail the operator; a failed input in such a run still does."""
    code, err = _quiet_backlog_run(trained_model_dir, all_sources(many_images)[:3], tmp_path / "out.csv")
    assert (code, err) == (EXIT_MAX_RUNTIME, "")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    code, err = _quiet_backlog_run(trained_model_dir, [str(bad)], tmp_path / "out2.csv")
    assert code == EXIT_MAX_RUNTIME and "done: corrupt 1" in err and "stopped by max-runtime" in err


def test_disk_full_keeps_written_rows(many_images, trained_model_dir, tmp_path):
    out = tmp_path / "out.csv"
    limit = 6000  # bytes: room for the header and a few dozen rows

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    # --no-cache: nothing but the results may hit the limit (a compiled-model cache blob would)
    proc = subprocess.run([sys.executable, "-m", "edgeclass", "run", str(many_images), "--model",
                           str(trained_model_dir), "-o", str(out), "--resume", "-k", "1", "--no-cache"],
                          capture_output=True, text=True, preexec_fn=small_disk, timeout=300)
    assert proc.returncode == EXIT_OUTPUT, proc.stderr
    # one message whichever file (results or journal) hit the limit first; its count is the truth
    m = re.search(r"cannot write results to (\S+): File too large; the (\d+) rows written before the failure "
                  r"are intact in (\S+); run again with --resume to finish", proc.stderr)
    assert m and m.group(1) == m.group(3) == str(out), proc.stderr
    data = out.read_bytes()
    assert data.endswith(b"\n") and len(data) <= limit
    rows = read_csv(out)
    assert len(rows) == int(m.group(2)) > 5 and all(r["status"] == "ok" for r in rows)
    assert [r["source"] for r in rows] == all_sources(many_images)[: len(rows)]
    # with room again, --resume finishes the job
    r = run_cli("run", str(many_images), "--model", str(trained_model_dir), "-o", str(out), "--resume", "-k", "1")
    assert r.returncode == EXIT_OK, r.stderr
    assert sorted(x["source"] for x in read_csv(out)) == all_sources(many_images)


def test_unwritable_output(trained_model_dir, many_images, tmp_path):
    r = run_cli("run", str(many_images / "part2"), "--model", str(trained_model_dir),
                "-o", "/proc/edgeclass-cannot-write/out.csv")
    assert r.returncode == EXIT_OUTPUT
    assert "cannot write" in r.stderr and "Traceback" not in r.stderr


def test_cron_mode_logs_plainly(trained_model_dir, many_images, tmp_path):
    r = run_cli("run", str(many_images / "part2"), "--model", str(trained_model_dir), "-o", str(tmp_path / "o.csv"))
    assert r.returncode == EXIT_OK
    assert "\x1b[" not in r.stderr  # no progress bar or colour codes when not on a terminal
    assert "done: ok 80" in r.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux for a real terminal")
def test_progress_bar_on_a_terminal(many_images, trained_model_dir, tmp_path):
    """On a real terminal (tmux), a progress bar with count, rate and ETA."""
    session = f"edgeclass-{os.getpid()}"
    cmd = (f"{sys.executable} -m edgeclass run {many_images} --model {trained_model_dir} -o {tmp_path / 'o.csv'} "
           f"--threads 1 --full-decode; sleep 30")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "20", cmd], check=True)
    seen = ""
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True).stdout
            if "classifying" in screen and f"/{N_IMAGES}" in screen and "img/s" in screen:
                seen = screen
                break
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert "img/s" in seen, seen


def test_a_quiet_run_does_not_import_rich_nor_openvinos_converter(trained_model_dir, tmp_path):
    """A cron run (-q) prints nothing, so it does not pay for Rich's import (~30 ms a start); a
    run that prints (a bad file's row on stderr without -q) still says it. Neither imports
    OpenVINO's conversion API and its telemetry (edgeclass.ovruntime: 0.13 s a start)."""
    img = tmp_path / "one.jpg"
    cv2.imwrite(str(img), cv2.cvtColor(synthetic_photo(300, 320, seed=1), cv2.COLOR_RGB2BGR))
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    code = ("import sys\nfrom edgeclass.cli import app\ntry:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('OVC' if any(m.startswith(('openvino.tools.ovc', 'openvino_telemetry')) for m in sys.modules)\n"
            "      else 'NO-OVC', file=sys.stderr)\n"
            "print('RICH' if any(m.split('.')[0] == 'rich' for m in sys.modules) else 'NO-RICH', file=sys.stderr)\n")
    quiet = subprocess.run([sys.executable, "-c", code, "run", str(img), "--model", str(trained_model_dir), "-q"],
                           capture_output=True, text=True, timeout=300)
    assert read_csv(quiet.stdout)[0]["status"] == "ok"
    assert quiet.stderr.strip().splitlines()[-2:] == ["NO-OVC", "NO-RICH"]
    loud = subprocess.run([sys.executable, "-c", code, "run", str(tmp_path / "bad.jpg"), "--model",
                           str(trained_model_dir)], capture_output=True, text=True, timeout=300)
    assert "corrupt" in loud.stderr and loud.stderr.strip().splitlines()[-2:] == ["NO-OVC", "RICH"]
