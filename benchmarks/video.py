"""What video and cameras cost: files at a cost that follows the samples, cameras at a fraction of a core.

Prints ratios from one run (no timing asserts anywhere; compare runs on the same box):

1. library choice, on the first 20 s of the file: OpenCV's FFmpeg backend vs PyAV for a full
   decode, key frames only, and seeking every 10 s (wall and CPU seconds);
2. a 1080p H.264 file (25 fps, GOP 2 s, camera-like noise) through edgeclass's own pipeline
   (reader, preprocessing, OpenVINO), after start-up: ``--every 10`` (goal >= 60 s of video per
   wall second, every sample within one frame of its time), ``--every 1`` (goal >= 10x real
   time), ``--keyframes`` (goal >= 100x);
2b. ``--keyframes --every 10`` (interval >= GOP: one key packet decoded per sample) against the
   key-frame scan it replaces (every key frame decoded), medians of ``--repeat`` runs, after
   start-up (goal >= 300x real time) and as ``edgeclass run`` in a subprocess (start-up included);
3. live 1080p@25 cameras (the same bitstream served in real time over HTTP by ``ffmpeg -re``,
   copy mode, as an IP camera would): CPU % of one core per camera with inference at
   ``--every 1`` (goal <= 20 %) and ``--keyframes`` (goal <= 3 %); how many such cameras this box
   sustains, and N cameras at once with their rows (no camera starved);
4. memory of one live camera: RSS after 1 minute and at the end (goal: within 10 %).

Usage:
    python -m benchmarks.video                                  # the full run (~25 min on 2 cores)
    python -m benchmarks.video --minutes 1 --live-seconds 20 --memory-minutes 2   # a quick run
    python -m benchmarks.video --memory-minutes 10              # the 10-minute memory run
    python -m benchmarks.video --skip library --skip files --skip live --skip memory   # 2b only

Needs ffmpeg (scripts/install-test-system-deps.sh) and a model: ``--model DIR``, else an FP32
mobilevitv2_075 with random weights is converted once into the work folder (convert extra).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks._common import REPO, free_port, make_model

FPS = 25


def sh(*args) -> None:
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_video(work: Path, minutes: float) -> Path:
    """1080p25 H.264, GOP 2 s, no B-frames (as cameras encode), moving test pattern + temporal noise."""
    out = work / f"camera_{minutes:g}min.mp4"
    if not out.exists():
        tmp = out.with_suffix(".tmp.mp4")
        sh("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
           f"testsrc2=size=1920x1080:rate={FPS},noise=alls=10:allf=t", "-t", int(minutes * 60), "-c:v", "libx264",
           "-preset", "veryfast", "-g", 2 * FPS, "-keyint_min", 2 * FPS, "-sc_threshold", 0, "-bf", 0,
           "-b:v", "6M", "-pix_fmt", "yuv420p", tmp)
        tmp.rename(out)
    return out


def clocked(fn):
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - w, time.process_time() - c, result


# ----------------------------------------------------------------------------- 1. library choice
def library_choice(video: Path, work: Path) -> None:
    import av
    import cv2

    clip = work / "clip20.mp4"
    if not clip.exists():
        sh("ffmpeg", "-v", "error", "-y", "-i", video, "-t", 20, "-c", "copy", clip)
    p = str(clip)

    def cv_grab():
        cap = cv2.VideoCapture(p, cv2.CAP_FFMPEG)
        n = 0
        while cap.grab():
            n += 1
        return n

    def av_decode(skip=None):
        def run():
            with av.open(p) as c:
                s = c.streams.video[0]
                s.thread_type = "SLICE" if skip else "AUTO"
                if skip:
                    s.codec_context.skip_frame = skip
                return sum(1 for _ in c.decode(s))
        return run

    def cv_seek():
        cap = cv2.VideoCapture(p, cv2.CAP_FFMPEG)
        n = 0
        for t in (0, 10):
            cap.set(cv2.CAP_PROP_POS_MSEC, t * 1000)
            n += cap.read()[0]
        return n

    def av_seek():
        with av.open(p) as c:
            s = c.streams.video[0]
            n = 0
            for t in (0, 10):
                c.seek(int(t / s.time_base), stream=s)
                n += any(f.time >= t - 1e-6 for f in c.decode(s))
            return n

    print("\n1. library choice (20 s of 1080p25, GOP 2 s): wall s / CPU s")
    rows = [("full decode", cv_grab, av_decode()), ("key frames only", None, av_decode("NONKEY")),
            ("seek to 0 s and 10 s", cv_seek, av_seek)]
    for name, a, b in rows:
        wa, ca, _ = clocked(a) if a else (float("nan"), float("nan"), None)
        wb, cb, _ = clocked(b)
        cv_txt = "no key-frame mode" if a is None else f"{wa:6.2f} / {ca:6.2f}"
        print(f"   {name:22s} OpenCV {cv_txt:>18s}   PyAV {wb:6.2f} / {cb:6.2f}")


# ----------------------------------------------------------------------------- 2. files
def file_modes(video: Path, classifier, minutes: float) -> None:
    from edgeclass.media.inputs import Source
    from edgeclass.media.video import VideoOptions, file_items
    from edgeclass.run.pipeline import Pipeline

    length = minutes * 60
    pp = classifier.metadata.preprocess
    print(f"\n2. a {minutes:g}-minute 1080p25 file through the pipeline (after start-up)")
    for label, options, goal in (("--every 10", VideoOptions(every_s=10), 60), ("--every 1", VideoOptions(every_s=1), 10),
                                 ("--keyframes", VideoOptions(keyframes=True), 100)):
        stop = threading.Event()
        items = file_items(Source(str(video), "video"), pp, options, stop, set())
        wall, cpu, rows = clocked(lambda: [d.result for d in Pipeline(classifier, 5, workers=2).run(items, stop)])
        ok = sum(r.ok for r in rows)
        line = (f"   {label:12s} {len(rows):4d} rows ({ok} ok) in {wall:6.2f}s wall, {cpu:6.2f}s CPU: "
                f"{length / wall:6.1f}x real time (goal >= {goal}x)")
        if options.every_s == 10:
            worst = max(abs(r.timestamp_ms - k * 10000) for k, r in enumerate(rows))
            line += f"; worst sample {worst:.0f} ms from its time (one frame = {1000 / FPS:.0f} ms)"
        print(line, flush=True)
        items = file_items(Source(str(video), "video"), pp, options, threading.Event(), set())
        wall, cpu, _ = clocked(lambda: [it.load() for it in items])  # reading + preprocessing, no model
        print(f"   {'':12s} without inference (one thread): {wall:6.2f}s wall, {cpu:6.2f}s CPU: "
              f"{length / wall:6.1f}x real time", flush=True)


# ----------------------------------------------------------------------------- 2b. key frames at the samples' cost
def keyframe_items(video: Path, pp, options, scan: bool):
    """Work items as ``file_items`` makes them; ``scan``: by the key-frame scan (every key frame
    decoded, the mode ``--keyframes`` used at every interval before), else as ``run`` chooses."""
    from edgeclass.media.video.files import frame_item, plan, sequential_samples
    from edgeclass.media.video.reader import AvReader

    with AvReader(str(video), options, live=False) as reader:
        if scan:
            mode, samples = "keyframes", sequential_samples(reader, options, threading.Event())
        else:
            mode, samples = plan(reader, options, threading.Event())
        for s in samples:
            yield mode, frame_item(str(video), s.frame, pp, options, s.index, s.time_s * 1000.0)


def keyframe_run(classifier, video: Path, options, scan: bool):
    """One pipeline run, after start-up: (wall s, CPU s, CPU s of reading in the feeding thread, rows,
    mode). Key-frame seeking on a long file reads every other sample in a second thread (KeyLane):
    that reading is in the process CPU, not in the feeding thread's."""
    from edgeclass.run.pipeline import Pipeline

    pp = classifier.metadata.preprocess
    modes, reader_cpu = [], [0.0]

    def items():  # the reader (demux, seek, decode) runs in this, the pipeline's feeding thread
        samples = keyframe_items(video, pp, options, scan)
        while True:
            t = time.thread_time()
            nxt = next(samples, None)
            reader_cpu[0] += time.thread_time() - t
            if nxt is None:
                return
            modes.append(nxt[0])
            yield nxt[1]

    wall, cpu, done = clocked(lambda: [d.result for d in Pipeline(classifier, 5, workers=2).run(items())])
    return wall, cpu, reader_cpu[0], [(r.frame, r.timestamp_ms, r.ok) for r in done], (modes or ["?"])[0]


def keyframe_seek(video: Path, model: Path, classifier, minutes: float, every: float, repeat: int) -> None:
    from statistics import median

    from edgeclass.media.video import VideoOptions

    length = minutes * 60
    options = VideoOptions(every_s=every, keyframes=True)
    print(f"\n2b. --keyframes --every {every:g} on the {minutes:g}-minute file, medians of {repeat} runs")
    runs: dict[bool, list] = {True: [], False: []}  # scan (before) or as `run` chooses (after) -> runs
    for _ in range(repeat):
        for scan in (True, False):  # interleaved: both see the same load on a shared box
            runs[scan].append(keyframe_run(classifier, video, options, scan))
    wall, cpu, reader = ({scan: median(r[i] for r in runs[scan]) for scan in runs} for i in range(3))
    cores = len(os.sched_getaffinity(0))
    for scan in (True, False):
        rows, mode = runs[scan][-1][3], runs[scan][-1][4]
        name = "before: key-frame scan" if scan else f"after: {mode}"
        bound = max(reader[scan], cpu[scan] / cores)  # on idle cores: the reader's thread, or all the work spread
        print(f"   {name:24s} {len(rows):3d} rows in {wall[scan]:5.2f}s wall, {cpu[scan]:5.2f}s CPU, of which reading "
              f"in the feeding thread {reader[scan]:5.2f}s (after start-up): {length / wall[scan]:6.1f}x real time; "
              f"on {cores} idle cores at most {length / bound:.0f}x" + ("" if scan else " (goal >= 300x)"), flush=True)
    same = all(r[3] == runs[True][0][3] for r in runs[True] + runs[False])
    print(f"   after vs before: {wall[True] / wall[False]:.2f}x faster (wall), {cpu[True] / cpu[False]:.2f}x less CPU; "
          f"the same rows (frame, timestamp_ms, status) in every run: {same}")
    cmd = [sys.executable, "-m", "edgeclass", "run", str(video), "--model", str(model), "--keyframes", "--every",
           f"{every:g}"]
    walls = [clocked(lambda: subprocess.run(cmd, check=True, capture_output=True, cwd=REPO))[0] for _ in range(repeat)]
    print(f"   `edgeclass run {video.name} --keyframes --every {every:g}`, start-up included: median "
          f"{median(walls):.2f}s ({', '.join(f'{w:.2f}' for w in walls)}): {length / median(walls):.0f}x real time",
          flush=True)


# ----------------------------------------------------------------------------- 3. live cameras
class Cameras:
    """N cameras: ``ffmpeg -re`` serving the file in real time (copy, looped) as MPEG-TS over HTTP."""

    def __init__(self, video: Path, n: int):
        self.urls, self.procs = [], []
        for _ in range(n):
            port = free_port()
            url = f"http://127.0.0.1:{port}/cam.ts"
            self.procs.append(subprocess.Popen(
                ["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(video), "-c", "copy", "-f", "mpegts",
                 "-listen", "1", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.urls.append(url)
        time.sleep(1.0)  # let the servers listen

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def run_live(classifier, urls, options, rss_marks=()):
    """Classify live sources for options.duration_s; (wall, CPU s, rows per source, health, RSS samples)."""
    from edgeclass.media.inputs import Source
    from edgeclass.media.video import LiveHub
    from edgeclass.run.pipeline import Pipeline

    stop = threading.Event()
    hub = LiveHub(classifier.metadata.preprocess, options, stop, lambda m: print("   |", m))
    rows: dict[str, int] = {}
    rss: list[tuple[float, float]] = []
    marks = list(rss_marks)
    t0 = time.monotonic()

    def items():
        for u in urls:
            hub.add(Source(u, "stream"))
        yield from hub.drain()

    def go():
        for done in Pipeline(classifier, 5, workers=2).run(items(), stop):
            rows[done.result.source] = rows.get(done.result.source, 0) + done.result.ok
            while marks and time.monotonic() - t0 >= marks[0]:
                rss.append((marks.pop(0), rss_mb()))

    wall, cpu, _ = clocked(go)
    return wall, cpu, rows, hub.health(), rss


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def live(video: Path, classifier, seconds: float, max_cameras: int) -> None:
    from edgeclass.media.video import VideoOptions

    print(f"\n3. live 1080p25 cameras ({seconds:g} s each run; CPU of this process, inference included)")
    per_camera = {}
    for label, opts in (("--every 1", VideoOptions(every_s=1, duration_s=seconds)),
                        ("--keyframes", VideoOptions(keyframes=True, duration_s=seconds))):
        cams = Cameras(video, 1)
        try:
            wall, cpu, rows, health, _ = run_live(classifier, cams.urls, opts)
        finally:
            cams.close()
        h = health[cams.urls[0]]
        per_camera[label] = 100 * cpu / wall
        goal = 20 if label == "--every 1" else 3
        print(f"   one camera {label:12s} {per_camera[label]:5.1f} % of one core (goal <= {goal} %): "
              f"{rows.get(cams.urls[0], 0)} rows, {h['frames_read']} frames read, {h['dropped']} dropped", flush=True)
    cores = len(os.sched_getaffinity(0))
    sustain = int(cores * 100 * 0.8 // max(per_camera["--every 1"], 0.1))  # 80 % of the box
    n = max(1, min(sustain, max_cameras))
    print(f"   this box ({cores} cores) sustains about {sustain} cameras at --every 1 (80 % load); running {n} at once"
          + (f" (capped by --cameras {max_cameras})" if sustain > max_cameras else ""))
    cams = Cameras(video, n)
    try:
        wall, cpu, rows, health, _ = run_live(classifier, cams.urls, VideoOptions(every_s=1, duration_s=seconds))
    finally:
        cams.close()
    counts = [rows.get(u, 0) for u in cams.urls]
    drops = [health[u]["dropped"] for u in cams.urls]
    print(f"   {n} cameras at once: rows per camera {counts} (expected ~{seconds:.0f} each), dropped {drops}, "
          f"{100 * cpu / wall:.0f} % of one core in all", flush=True)


def memory(video: Path, classifier, minutes: float) -> None:
    from edgeclass.media.video import VideoOptions

    total = minutes * 60
    first = min(60.0, total / 2)
    print(f"\n4. memory, one live camera at --every 1 for {minutes:g} min")
    cams = Cameras(video, 1)
    try:
        _, _, rows, _, rss = run_live(classifier, cams.urls, VideoOptions(every_s=1, duration_s=total),
                                      rss_marks=(first, total - 2))
    finally:
        cams.close()
    if len(rss) == 2:
        (t1, a), (t2, b) = rss
        print(f"   RSS {a:.0f} MB at {t1:.0f} s, {b:.0f} MB at {t2:.0f} s: {b / a:.3f}x (goal within 10 %); "
              f"{sum(rows.values())} rows")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0, help="length of the 1080p file")
    ap.add_argument("--live-seconds", type=float, default=60.0, help="length of each live run")
    ap.add_argument("--cameras", type=int, default=8, help="cap on cameras run at once")
    ap.add_argument("--memory-minutes", type=float, default=10.0)
    ap.add_argument("--model", type=Path, help="model folder (default: an FP32 mobilevitv2_075, random weights)")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "edgeclass-video-bench")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement in 2b (medians)")
    ap.add_argument("--skip", action="append", default=[],
                    choices=["library", "files", "keyframes", "live", "memory"])
    args = ap.parse_args()
    if not shutil.which("ffmpeg"):
        sys.exit("needs ffmpeg: scripts/install-test-system-deps.sh")
    args.work.mkdir(parents=True, exist_ok=True)

    from edgeclass.engine import Classifier, EngineOptions
    from edgeclass.modelfiles.folder import resolve_model_dir

    t = time.perf_counter()
    video = make_video(args.work, args.minutes)
    model = args.model or make_model(args.work, "mobilevitv2_075")
    print(f"media and model ready in {time.perf_counter() - t:.0f}s: {video} ({video.stat().st_size / 1e6:.0f} MB), {model}")
    if "library" not in args.skip:
        library_choice(video, args.work)
    with Classifier(resolve_model_dir(model), EngineOptions()) as classifier:
        print(f"model {classifier.metadata.model_name}, precision {classifier.precision}")
        if "files" not in args.skip:
            file_modes(video, classifier, args.minutes)
        if "keyframes" not in args.skip:
            keyframe_seek(video, model, classifier, args.minutes, 10.0, args.repeat)
        if "live" not in args.skip:
            live(video, classifier, args.live_seconds, args.cameras)
        if "memory" not in args.skip:
            memory(video, classifier, args.memory_minutes)
    print(f"\nmax RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
