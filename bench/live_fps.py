"""fkd-live's whole loop against MediaPipe Face Mesh, headless, on every shared clip.

    python bench/live_fps.py                      # the table in README.md (via bench/RESULTS.md)
    python bench/live_fps.py --output-cost        # plus fkd with --output .mp4 / .avi
    python bench/live_fps.py --threads 2 --no-prefetch --inline-detector   # the variants tried
    python bench/live_fps.py --detector-cost      # one detector run: full frame vs the tracker's search

fkd runs in this process exactly as fkd-live does (decode, detect or track, crop, model,
draw; no --output, since MediaPipe's loop writes nothing either). MediaPipe 0.10.21 (the
legacy solution, max_num_faces=1) runs in its own virtual environment under
.cache/bench-mediapipe, created here on first use, because it pins numpy<2. Runs of the two
alternate, so a busy machine slows both alike; the median of --repeats runs is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fkd.model.artifact import Predictor
from fkd.model.crop import CROP_SIZE, square_from_box
from fkd.model.detect import FaceDetector
from fkd.realtime import cli
from fkd.realtime.live import LiveConfig, LiveSummary, run_live
from fkd.realtime.pipeline import LivePipeline
from fkd.realtime.smooth import OneEuroParams
from fkd.realtime.sources import open_video
from fkd.realtime.track import DETECT_EVERY, DETECT_SIDE, FaceSearch, Tracker

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MP_VENV = ROOT / ".cache" / "bench-mediapipe"
MP_PINS = ["mediapipe==0.10.21", "numpy<2"]


def mediapipe_python() -> Path | None:
    """The MediaPipe venv's python, creating the venv if needed; None (with a note) if impossible."""
    python = MP_VENV / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import mediapipe"], capture_output=True).returncode == 0:
        return python
    print(f"creating {MP_VENV} with {' '.join(MP_PINS)} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", MP_VENV], check=True)
    pip = subprocess.run([python, "-m", "pip", "install", "-q", *MP_PINS], capture_output=True, text=True)
    if pip.returncode != 0:
        print(f"MediaPipe could not be installed for Python {sys.version_info.major}.{sys.version_info.minor} "
              f"(no wheel?): {pip.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return python


def mediapipe_run(python: Path, clip: Path) -> dict:
    out = subprocess.run([python, HERE / "mediapipe_fps.py", clip], capture_output=True, text=True, check=True,
                         env={**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def fkd_run(predictor: Predictor, clip: Path, args: argparse.Namespace,
            output: Path | None = None) -> tuple[LiveSummary, float]:
    """One headless run of fkd-live's loop, and the CPU ms it took per frame (all threads)."""
    tracker = Tracker(FaceDetector(), detect_every=args.detect_every, max_faces=args.max_faces,
                      detect_side=args.detect_side, smoothing=OneEuroParams(), background=not args.inline_detector)
    config = LiveConfig(output=output, headless=True, prefetch=not args.no_prefetch)
    cpu = time.process_time()
    summary = run_live(open_video(clip), LivePipeline(predictor, tracker), config)
    return summary, 1e3 * (time.process_time() - cpu) / max(summary.frames, 1)


def detector_cost(clips: list[Path], side: int) -> None:
    """ms per detector run, single-threaded, on every 4th frame: the full-frame pass the
    tracker runs when nothing is tracked, and its search while the clip's face is tracked."""
    import cv2

    cv2.setNumThreads(1)
    detector = FaceDetector()
    search = FaceSearch(detector, side)
    print("| clip | full frame ms | found | tracking: near the face ms | + new faces ms | found |")
    print("|---|---|---|---|---|---|")
    for clip in clips:
        full, near, both, hits_full, hits_near = [], [], [], 0, 0
        with open_video(clip) as source:
            for frame in source:
                if frame.index % 4:
                    continue
                gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
                t0 = time.perf_counter()
                boxes = detector.detect(gray, max_side=side)
                t1 = time.perf_counter()
                full.append(t1 - t0)
                hits_full += bool(boxes)
                if not boxes:
                    continue
                squares = [square_from_box(boxes[0])]
                t0 = time.perf_counter()
                found = search(gray, squares, discover=False)
                t1 = time.perf_counter()
                search(gray, squares, discover=True)
                t2 = time.perf_counter()
                near.append(t1 - t0)
                both.append(t2 - t0)
                hits_near += bool(found)
        def ms(values: list[float]) -> str:
            return f"{1e3 * statistics.median(values):.1f}"

        print(f"| {clip.name} | {ms(full)} | {hits_full}/{len(full)} | {ms(near)} | {ms(both)} "
              f"| {hits_near}/{len(near)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    clips = sorted((ROOT.parent / "shared" / "video").glob("*.mp4"))
    parser.add_argument("--clips", type=Path, nargs="*", default=clips)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=cli.THREADS)
    parser.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torchscript"])
    parser.add_argument("--detect-every", type=int, default=DETECT_EVERY)
    parser.add_argument("--detect-side", type=int, default=DETECT_SIDE)
    parser.add_argument("--max-faces", type=int, default=4)
    parser.add_argument("--inline-detector", action="store_true", help="detector in the loop's thread")
    parser.add_argument("--no-prefetch", action="store_true", help="decode in the loop's thread")
    parser.add_argument("--no-mediapipe", action="store_true")
    parser.add_argument("--output-cost", action="store_true", help="also time fkd with --output .mp4 and .avi")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    parser.add_argument("--detector-cost", action="store_true", help="time one detector run, alone, and stop")
    args = parser.parse_args()
    if not args.clips:
        sys.exit("no clips: ../shared/video is missing; pass --clips.")
    if args.detector_cost:
        detector_cost(args.clips, args.detect_side)
        return

    import cv2

    cv2.setNumThreads(args.threads)
    predictor = Predictor(args.weights, runtime=args.runtime, threads=args.threads)
    predictor(np.zeros((1, CROP_SIZE, CROP_SIZE), np.uint8))  # warm-up, as MediaPipe's first frame
    mp_python = None if args.no_mediapipe else mediapipe_python()
    print(f"fkd: runtime {predictor.runtime}, threads {args.threads}, detect every {args.detect_every} "
          f"at {args.detect_side} px, max faces {args.max_faces}, detector "
          f"{'inline' if args.inline_detector else 'in a worker thread'}, decode "
          f"{'inline' if args.no_prefetch else 'in a reader thread'}; {os.cpu_count()} CPUs")
    results = []
    for clip in args.clips:
        fkd, cpu, mp = [], [], []
        for _ in range(args.repeats):
            summary, cpu_ms = fkd_run(predictor, clip, args)
            fkd.append(summary)
            cpu.append(cpu_ms)
            if mp_python:
                mp.append(mediapipe_run(mp_python, clip))
        best = sorted(fkd, key=lambda s: s.fps)[len(fkd) // 2]
        row = {"clip": clip.name, "frames": best.frames, "fkd_fps": statistics.median(s.fps for s in fkd),
               "fkd_cpu_ms": statistics.median(cpu), "fkd_face_share": best.frames_with_face / best.frames,
               "fkd_stages_ms": best.stages, "fkd_detector_runs": best.detections}
        if mp:
            row["mediapipe_fps"] = statistics.median(m["fps"] for m in mp)
            row["mediapipe_cpu_ms"] = statistics.median(m["cpu_ms_per_frame"] for m in mp)
            row["mediapipe_face_share"] = mp[0]["frames_with_face"] / mp[0]["frames"]
        if args.output_cost:
            with tempfile.TemporaryDirectory() as tmp:
                for ext in (".mp4", ".avi"):
                    row[f"fkd_fps_output{ext}"] = fkd_run(predictor, clip, args, Path(tmp) / f"out{ext}")[0].fps
        results.append(row)
        print(f"  {clip.name}: fkd {row['fkd_fps']:.0f} fps" +
              (f", MediaPipe {row['mediapipe_fps']:.0f} fps" if mp else ""), file=sys.stderr)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def print_table(results: list[dict]) -> None:
    has_mp = all("mediapipe_fps" in r for r in results)
    head = "| clip | frames | fkd fps | fkd CPU ms/frame | keypoints on |"
    if has_mp:
        head += " MediaPipe fps | MediaPipe CPU ms/frame | MediaPipe face on | fkd / MediaPipe fps |"
    if "fkd_fps_output.mp4" in results[0]:
        head += " fkd fps --output .mp4 | .avi |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in results:
        line = (f"| {r['clip']} | {r['frames']} | {r['fkd_fps']:.0f} | {r['fkd_cpu_ms']:.2f} "
                f"| {100 * r['fkd_face_share']:.1f} % |")
        if has_mp:
            line += (f" {r['mediapipe_fps']:.0f} | {r['mediapipe_cpu_ms']:.2f} "
                     f"| {100 * r['mediapipe_face_share']:.1f} % | {r['fkd_fps'] / r['mediapipe_fps']:.2f}x |")
        if "fkd_fps_output.mp4" in r:
            line += f" {r['fkd_fps_output.mp4']:.0f} | {r['fkd_fps_output.avi']:.0f} |"
        print(line)
    stages = list(results[0]["fkd_stages_ms"])
    print("\nfkd per-stage time, median / p95 ms (decode and detector run in their own threads):\n")
    print("| clip | " + " | ".join(stages) + " | detector runs |")
    print("|---|" + "---|" * (len(stages) + 1))
    for r in results:
        cells = [f"{r['fkd_stages_ms'][s][0]:.2f} / {r['fkd_stages_ms'][s][1]:.2f}" if s in r["fkd_stages_ms"]
                 else "-" for s in stages]
        print(f"| {r['clip']} | " + " | ".join(cells) + f" | {r['fkd_detector_runs']} |")


if __name__ == "__main__":
    main()
