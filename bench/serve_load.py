"""fkd-live --serve under load: the loop's speed with 0 and with 3 viewers, and memory with a stalled one.

    python bench/serve_load.py                 # the speed runs, then 5 minutes of memory
    python bench/serve_load.py --minutes 1     # a quicker look at memory
    python bench/serve_load.py --minutes 0     # speed only

Speed: fkd-live --headless runs as its own process, as a user runs it, on the shared
talking-head clip played end to end --passes times (one file, written once under .cache/), as
fast as the loop goes: without --serve, serving with no viewer, serving three viewers that read
everything as fast as it comes as the page does (the plain picture and the records), and
"3 mixed": two such and one that reads the annotated picture and the records, so both encoders
run. The kinds alternate, --repeats runs each, so a busy machine slows each kind alike; the
figures are fkd-live's own "fps overall" and the process's CPU time per frame (all threads).

Memory: fkd-live on the same clip sent by this script as a 25 fps MJPEG camera (looped, so the
run lasts --minutes), with one viewer that opens both pictures and the records, reads their
first 16 kB, then reads nothing more. The server drops a connection that has refused data for
10 s (realtime/outputs/serve.py, STALL_SECONDS; its /status stops counting it); whenever it has, a new
stalled viewer takes its place, so one is always there and connections come and go all run
long. The RSS of the fkd-live process (VmRSS in /proc) is printed every --every seconds; the
target is flat: the last figure within 5 MB of the one after the first minute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2
from mjpeg_camera import LoopingCamera  # this folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared/video/talking_head_512.mp4"
CACHE = ROOT / ".cache/bench-serve"
PACE = 25.0
START_LINE = re.compile(r"fkd-live: serving (http://\S+)")
PAGE = ("/stream.mjpg?plain=1", "/records")  # what the page reads
#: The connections each kind of speed run opens: three pages; or two pages and a reader of the
#: annotated stream (both encoders at work).
VIEWERS = {"3 viewers": PAGE * 3, "3 mixed": PAGE * 2 + ("/stream.mjpg", "/records")}


def long_clip(clip: Path, passes: int) -> Path:
    """The clip end to end ``passes`` times, as one mp4v file (written once, then reused)."""
    out = CACHE / f"{clip.stem}_x{passes}.mp4"
    if out.is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while (image := cap.read()[1]) is not None:
        frames.append(image)
    fps = cap.get(cv2.CAP_PROP_FPS) or PACE
    cap.release()
    tmp = out.with_suffix(".tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, frames[0].shape[1::-1])
    for _ in range(passes):
        for image in frames:
            writer.write(image)
    writer.release()
    tmp.replace(out)
    return out


class FkdLive:
    """fkd-live as its own process; stderr collected; the --serve URL once it is printed."""

    def __init__(self, *args: object) -> None:
        code = "import sys; from fkd.realtime.cli import live_app; sys.argv[0] = 'fkd-live'; live_app()"
        self.proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.lines: list[str] = []
        self.url: str | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if (match := START_LINE.search(line)) and self.url is None:
                self.url = match[1].split("?")[0].rstrip("/")
                self._ready.set()
        self._ready.set()

    def wait_url(self) -> str:
        self._ready.wait(300)
        if self.url is None:
            sys.exit("fkd-live did not start serving:\n" + "\n".join(self.lines))
        return self.url

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    def finish(self, interrupt: bool = False) -> str:
        if interrupt and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait()
        time.sleep(0.2)
        return "\n".join(self.lines)


def reader(url: str, stop: threading.Event, received: list[int]) -> None:
    """A viewer that reads everything as fast as it comes, until ``stop``."""
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=30) as response:
        while not stop.is_set():
            chunk = response.read1(1 << 16)
            if not chunk:
                return
            received[0] += len(chunk)


def fps_of(summary: str) -> float:
    match = re.search(r"([\d.]+) fps overall", summary)
    return float(match[1]) if match else float("nan")


def speed_run(clip: Path, kind: str, extra: list[str]) -> tuple[float, float, str]:
    """(loop fps, CPU ms per frame, --serve's summary line) of one run of ``kind``."""
    serve = [] if kind == "no --serve" else ["--serve", "0"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = FkdLive("--video", clip, "--headless", *serve, *extra)
    stop, threads, received = threading.Event(), [], [0]
    if kind in VIEWERS:
        base = run.wait_url()
        for path in VIEWERS[kind]:
            threads.append(threading.Thread(target=reader, args=(base + path, stop, received), daemon=True))
            threads[-1].start()
    summary = run.finish()
    stop.set()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    frames = int(m[1]) if (m := re.search(r"(\d+) frames read", summary)) else 0
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e3 / max(frames, 1)
    note = next((line for line in summary.splitlines() if line.startswith("--serve")), "")
    if run.proc.returncode != 0 or not frames:
        sys.exit(f"fkd-live failed ({kind}):\n{summary}")
    if kind in VIEWERS:
        note += f" ({received[0] / 2**20:.0f} MB read by the viewers)"
    return fps_of(summary), cpu, note


class StalledViewer:
    """Opens both pictures and the records, reads their first 16 kB, then nothing more."""

    PATHS = ("/stream.mjpg", "/stream.mjpg?plain=1", "/records")

    def __init__(self, port: int) -> None:
        self.sockets = []
        for path in self.PATHS:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            got = 0
            s.settimeout(30)
            while got < 16384:
                chunk = s.recv(16384 - got)
                if not chunk:
                    break
                got += len(chunk)
            self.sockets.append(s)

    def close(self) -> None:
        for s in self.sockets:
            s.close()


def memory_run(clip: Path, minutes: float, every: float, extra: list[str]) -> None:
    camera = LoopingCamera(clip, PACE)
    run = FkdLive("--video", camera.url, "--headless", "--serve", "0", *extra)
    port = int(run.wait_url().rsplit(":", 1)[1])
    stalled, drops = StalledViewer(port), 0
    print(f"\nmemory: fkd-live on {clip.name} sent as a {PACE:g} fps MJPEG camera, {minutes:g} minutes, one viewer "
          f"that stopped reading")
    print(f"{'t s':>6}{'RSS MB':>9}{'frames':>9}{'loop fps':>10}{'stalled connections dropped':>29}")
    start, marks, last = time.monotonic(), [], None
    while (t := time.monotonic() - start) < 60 * minutes:
        time.sleep(min(every, max(0.0, 60 * minutes - t)) or 0.01)
        status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30))
        # The server's own count: the viewer cannot tell, as the server's FIN waits behind the bytes it never read.
        served = sum(status["viewers"].values())
        if served < len(StalledViewer.PATHS):  # the server let some go: a new viewer stalls in its place
            drops += len(StalledViewer.PATHS) - served
            stalled.close()
            stalled = StalledViewer(port)
        rss, t = run.rss_mb(), time.monotonic() - start
        marks.append((t, rss))
        fps = (status["frames"] - last[1]) / (t - last[0]) if last else float("nan")
        last = (t, status["frames"])
        print(f"{t:6.0f}{rss:9.1f}{status['frames']:9d}{fps:10.1f}{drops:29d}", flush=True)
    stalled.close()
    summary = run.finish(interrupt=True)
    camera.close()
    print("\n".join(line for line in summary.splitlines() if line.startswith("--serve") or "fps overall" in line))
    settled = [rss for t, rss in marks if t >= 60] or [marks[-1][1]]
    growth = marks[-1][1] - settled[0]
    print(f"RSS at the end minus RSS after the first minute: {growth:+.1f} MB "
          f"({'within' if abs(growth) <= 5 else 'OVER'} the 5 MB target); min {min(r for _, r in marks):.1f}, "
          f"max {max(r for _, r in marks):.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--passes", type=int, default=10, help="plays of the clip in one speed run")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each kind, alternating")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the memory run (0: none)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between RSS figures")
    parser.add_argument("--weights", type=Path, help="fkd-live --weights (default: the shipped model)")
    args = parser.parse_args()
    if not args.clip.is_file():
        sys.exit(f"needs the shared clip {args.clip}")
    extra = ["--weights", str(args.weights)] if args.weights else []
    clip = long_clip(args.clip, args.passes)
    kinds = ("no --serve", "0 viewers", *VIEWERS)
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    print(f"speed: fkd-live --headless on {args.clip.name} x{args.passes} ({clip.name}), runs alternating")
    for repeat in range(args.repeats):
        for kind in kinds:
            fps, cpu, note = speed_run(clip, kind, extra)
            results[kind].append((fps, cpu))
            print(f"  run {repeat + 1} {kind:<11} {fps:6.1f} fps  {cpu:5.2f} CPU ms/frame  {note}", flush=True)
    print(f"\n{'':<12}{'median fps':>11}{'CPU ms/frame':>14}{'vs 0 viewers':>14}")
    base = statistics.median(f for f, _ in results["0 viewers"])
    for kind in kinds:
        fps = statistics.median(f for f, _ in results[kind])
        cpu = statistics.median(c for _, c in results[kind])
        print(f"{kind:<12}{fps:11.1f}{cpu:14.2f}{100 * (fps / base - 1):+13.1f}%")
    if args.minutes > 0:
        memory_run(args.clip, args.minutes, args.every, extra)


if __name__ == "__main__":
    main()
