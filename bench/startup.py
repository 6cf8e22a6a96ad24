"""How long fkd's inference commands take as whole processes, against the floor of importing cv2 and onnxruntime.

    python bench/startup.py [--repeats 5] [--photo PHOTO] [--video VIDEO]

Every figure is the median wall time of a whole new process (start-up, imports, model load,
work, exit), as a user who runs the command once per file pays it. The floor is
``python -c "import cv2, onnxruntime"``: no fkd command that runs the model can start faster.
Targets (issue 11): --help <= 2x the floor, fkd-predict on one photo <= 3x, fkd-live on a
30-frame clip <= 4x. PHOTO defaults to the first AFW photo of ../shared, VIDEO to
../shared/video/talking_head_512.mp4, from which the first 30 frames are cut into a temporary clip.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

SHARED = Path(__file__).resolve().parents[2] / "shared"
FRAMES = 30
TARGETS = {"fkd-live --help": 2.0, "fkd-predict, one photo": 3.0, f"fkd-live --video, {FRAMES} frames": 4.0}


def cut_clip(video: Path, out: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``video`` as an mp4v clip (what a short user clip looks like)."""
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    written = 0
    while written < frames:
        ok, frame = cap.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (frame.shape[1], frame.shape[0]))
        writer.write(frame)
        written += 1
    cap.release()
    if writer is None or written < frames:
        sys.exit(f"error: {video} has fewer than {frames} readable frames.")
    writer.release()
    return out


def tool(name: str) -> str:
    """The console script installed beside this Python (the venv's), so the figures are fkd's own."""
    found = Path(sys.executable).with_name(name)
    if not found.is_file():
        found_on_path = shutil.which(name)
        if found_on_path is None:
            sys.exit(f"error: {name} is not installed; run pip install -e . first.")
        return found_on_path
    return str(found)


def timed(cmd: list[str]) -> float:
    """Seconds one whole run of ``cmd`` takes; a failed run ends the benchmark with its error."""
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return took


def medians(runs: dict[str, list[str]], repeats: int) -> dict[str, float]:
    """Median seconds of each command over ``repeats`` rounds, after one untimed round (file cache).

    Rounds run every command once in turn, so a load that drifts during the benchmark weighs on
    the floor and on fkd's commands alike, and the ratios stay fair.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(repeats + 1):
        for name, cmd in runs.items():
            took = timed(cmd)
            if i:
                times[name].append(took)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--photo", type=Path, default=None)
    parser.add_argument("--video", type=Path, default=SHARED / "video/talking_head_512.mp4")
    args = parser.parse_args()
    photo = args.photo or min((SHARED / "data/300w/afw").glob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = cut_clip(args.video, Path(tmp) / "clip30.mp4", FRAMES)
        runs = {
            "floor: import cv2, onnxruntime": [sys.executable, "-c", "import cv2, onnxruntime"],
            "fkd-live --help": [tool("fkd-live"), "--help"],
            "fkd-predict, one photo": [tool("fkd-predict"), str(photo), "--json", str(Path(tmp) / "p.jsonl")],
            f"fkd-live --video, {FRAMES} frames": [tool("fkd-live"), "--video", str(clip), "--headless",
                                                   "--export", str(Path(tmp) / "l.jsonl")],
        }
        figures = medians(runs, args.repeats)
    floor = figures.pop("floor: import cv2, onnxruntime")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"median of {args.repeats} whole-process runs each, load average {load:.1f} at the end")
    print(f"photo {photo.name}; clip: first {FRAMES} frames of {args.video.name}")
    print(f"{'command':34s} {'seconds':>8s} {'floor':>7s} {'ratio':>6s} {'target':>7s}")
    for name, seconds in figures.items():
        ratio = seconds / floor
        verdict = "ok" if ratio <= TARGETS[name] else "OVER"
        print(f"{name:34s} {seconds:8.2f} {floor:7.2f} {ratio:5.1f}x {TARGETS[name]:5.0f}x  {verdict}")


if __name__ == "__main__":
    main()
