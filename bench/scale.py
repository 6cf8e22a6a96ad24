"""Keypoints at scale: photos and videos per second on one process, on --workers 2, and on a local Ray.

    python bench/scale.py [--photos 2000] [--small 500] [--videos 10] [--workers 2] [--output-copies] [--weights W]

Photos: the first PHOTOS of ../shared/data/300w/*/*.jpg (sorted), listed in a text file (a SOURCE
fkd-predict takes), through ``fkd-predict LIST --export ...`` three ways: ``--workers 1`` (one
process), ``--workers 2``, and ``--ray --workers 2`` (a Ray started inside the command, with 2 CPUs).
Each figure is a whole command, start-up included (spawning the workers, or starting Ray), since that
is what a user waits for; the start-up of a bare local Ray is measured on its own as well. Videos:
the shared clips repeated to VIDEOS files, through ``fkd-live --video DIR --export OUT`` the same
three ways.

Memory: the resident set of every process of a run is sampled every 0.1 s from /proc; the table
gives the peak of the command's own process (the driver) and the peak of each of its workers
(pool processes, or Ray's workers), for SMALL and for PHOTOS photos: flat means the same. Ray's
own daemons (raylet, GCS, ...) are given as one sum.

Run it on an otherwise idle machine (a training run in the background halves every figure; the
script refuses to start while a training run goes on or the load average is above 0.5, unless
--busy-ok), and paste its output, which is markdown, with the command into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
PAGE = os.sysconf("SC_PAGE_SIZE")


def tool(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    if not found.is_file():
        sys.exit(f"error: {name} is not installed beside {sys.executable}; run pip install -e '.[ray]' first.")
    return str(found)


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def children() -> dict[int, int]:
    """pid -> parent pid, for every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    out[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def role(pid: int, driver: int) -> str:
    """driver, worker (pool process or Ray worker that does fkd's work), ray (Ray's daemons), or other."""
    if pid == driver:
        return "driver"
    line = cmdline(pid)
    if "multiprocessing.spawn" in line or ("ray::" in line and ("PhotoActor" in line or "_video_task" in line)):
        return "worker"
    if "resource_tracker" in line:
        return "other"
    return "ray"


@dataclass
class Sample:
    peaks: dict[int, float] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)


def watch(driver: int, stop: threading.Event, sample: Sample) -> None:
    """Peak RSS of the driver and every process below it, until ``stop``."""
    while not stop.is_set():
        parents = children()
        family = {driver}
        grew = True
        while grew:
            grew = False
            for pid, parent in parents.items():
                if parent in family and pid not in family:
                    family.add(pid)
                    grew = True
        for pid in family:
            mb = rss_mb(pid)
            if mb:
                sample.peaks[pid] = max(sample.peaks.get(pid, 0.0), mb)
                if sample.roles.get(pid, "ray") == "ray":  # a Ray worker shows its task's name once it has one
                    sample.roles[pid] = role(pid, driver)
        stop.wait(0.1)


@dataclass
class Run:
    label: str
    seconds: float
    driver_mb: float
    worker_mb: list[float]
    ray_mb: float
    code: int
    tail: str


def timed(label: str, args: list[str]) -> Run:
    start = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sample, stop = Sample(), threading.Event()
    watcher = threading.Thread(target=watch, args=(proc.pid, stop, sample), daemon=True)
    watcher.start()
    _, err = proc.communicate()
    seconds = time.monotonic() - start
    stop.set()
    watcher.join()
    workers = sorted((mb for pid, mb in sample.peaks.items() if sample.roles.get(pid) == "worker"), reverse=True)
    ray = sum(mb for pid, mb in sample.peaks.items() if sample.roles.get(pid) == "ray")
    last = err.strip().splitlines()[-1] if err.strip() else ""
    if proc.returncode not in (0, 3):
        sys.exit(f"error: {label} failed (exit {proc.returncode}): {err[-2000:]}")
    return Run(label, seconds, sample.peaks.get(proc.pid, 0.0), workers, ray, proc.returncode, last)


def mbs(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def ray_start_seconds() -> float:
    code = ("import logging, time, ray; t = time.monotonic(); "
            "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR); "
            "ray.cluster_resources(); print(time.monotonic() - t); ray.shutdown()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--small", type=int, default=500, help="the smaller run, for memory against size")
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output-copies", action="store_true", help="also write annotated copies (-o)")
    parser.add_argument("--busy-ok", action="store_true", help="run even while fkd-train runs")
    parser.add_argument("--weights", type=Path, help="weights for every run (default: the shipped ones)")
    args = parser.parse_args()
    training = subprocess.run(["pgrep", "-f", "fkd-train|fkd.train.cli|train_app"], capture_output=True)
    if not args.busy_ok and training.returncode == 0:
        sys.exit("error: a training run is going on; the figures need an idle machine (--busy-ok to run anyway).")
    load = os.getloadavg()[0]
    if not args.busy_ok and load > 0.5:
        sys.exit(f"error: the load average is {load:.1f}; the figures need an idle machine (--busy-ok to run anyway).")
    photos = sorted((SHARED / "data/300w").glob("*/*.jpg"))[: args.photos]
    clips = sorted((SHARED / "video").glob("*.mp4"))
    if len(photos) < args.photos or not clips:
        sys.exit(f"error: needs {args.photos} photos under {SHARED}/data/300w and clips in {SHARED}/video.")
    predict, live = tool("fkd-predict"), tool("fkd-live")
    n = args.workers
    work = Path(tempfile.mkdtemp(prefix="fkd-scale-"))
    try:
        lists = {}
        for count in (args.small, args.photos):
            lists[count] = work / f"photos-{count}.txt"
            lists[count].write_text("".join(f"{p.resolve()}\n" for p in photos[:count]))
        videos = work / "videos"
        videos.mkdir()
        for i in range(args.videos):
            clip = clips[i % len(clips)]
            (videos / f"{i:02d}-{clip.name}").symlink_to(clip.resolve())
        frames = sum(int(subprocess.run([sys.executable, "-c", "import cv2, sys; c = cv2.VideoCapture(sys.argv[1]); "
                                         "print(int(c.get(cv2.CAP_PROP_FRAME_COUNT)))", str(v)],
                                        capture_output=True, text=True).stdout) for v in sorted(videos.iterdir()))
        copies = ["-o"] if args.output_copies else []
        weights = ["--weights", str(args.weights.resolve())] if args.weights else []
        ways = [("one process", ["--workers", "1"]), (f"--workers {n}", ["--workers", str(n)]),
                (f"--ray, local Ray with {n} CPUs", ["--ray", "--workers", str(n)])]
        photo_runs: dict[tuple[str, int], Run] = {}
        for count in (args.photos, args.small):
            for label, extra in ways:
                out = work / f"out-{len(photo_runs)}"
                target = [str(out / "shards")] if "--ray" in extra else [str(out / "faces.jsonl")]
                more = [*copies, str(out / "annotated")] if copies else []
                photo_runs[(label, count)] = timed(label, [predict, str(lists[count]), *extra, *weights, "--export",
                                                           *target, *more])
        video_runs = {}
        for label, extra in ways:
            out = work / f"vout-{len(video_runs)}"
            video_runs[label] = timed(label, [live, "--video", str(videos), *extra, *weights, "--export", str(out)])
        ray_start = ray_start_seconds()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"`python bench/scale.py{' '.join(['', *sys.argv[1:]])}` on {platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} usable cores, Python {platform.python_version()}; "
          f"a bare local Ray ({n} CPUs) takes {ray_start:.1f} s to start.\n")
    base = photo_runs[(ways[0][0], args.photos)].seconds
    pool = photo_runs[(ways[1][0], args.photos)].seconds
    print(f"Photos ({args.photos}; memory at {args.small} -> {args.photos} photos, peak RSS):\n")
    print("| how | seconds | photos/s | vs one process | driver MB | each worker MB | Ray daemons MB |")
    print("|---|---|---|---|---|---|---|")
    for label, _ in ways:
        big, small = photo_runs[(label, args.photos)], photo_runs[(label, args.small)]
        workers = f"{mbs(small.worker_mb)} -> {mbs(big.worker_mb)}" if big.worker_mb else "-"
        ray = f"{small.ray_mb:.0f} -> {big.ray_mb:.0f}" if big.ray_mb else "-"
        extra = f" ({big.seconds / pool - 1:+.0%} against --workers {n})" if "--ray" in label else ""
        print(f"| {label} | {big.seconds:.1f} | {args.photos / big.seconds:.1f} | {base / big.seconds:.2f}x{extra} | "
              f"{small.driver_mb:.0f} -> {big.driver_mb:.0f} | {workers} | {ray} |")
    vbase = video_runs[ways[0][0]].seconds
    vpool = video_runs[ways[1][0]].seconds
    print(f"\nVideos ({args.videos} files, {frames} frames; one JSON-lines file each):\n")
    print("| how | seconds | videos/s | frames/s | vs one process | driver MB | each worker MB |")
    print("|---|---|---|---|---|---|---|")
    for label, _ in ways:
        r = video_runs[label]
        extra = f" ({r.seconds / vpool - 1:+.0%} against --workers {n})" if "--ray" in label else ""
        workers = mbs(r.worker_mb) if r.worker_mb else "-"
        print(f"| {label} | {r.seconds:.1f} | {args.videos / r.seconds:.2f} | {frames / r.seconds:.0f} | "
              f"{vbase / r.seconds:.2f}x{extra} | {r.driver_mb:.0f} | {workers} |")


if __name__ == "__main__":
    main()
