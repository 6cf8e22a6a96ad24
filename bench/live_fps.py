"""fkd-live's whole loop against MediaPipe Face Mesh, headless, on every shared clip.

    python bench/live_fps.py                      # the table in README.md (via bench/RESULTS.md)
    python bench/live_fps.py --output-cost        # plus fkd with --output .mp4 / .avi
    python bench/live_fps.py --threads 2 --no-prefetch   # the variants tried
    python bench/live_fps.py --detector-cost      # what the detector costs and finds at each --min-face

fkd runs in this process exactly as fkd-live does (decode, detect or track, crop, model,
draw; no --output, since MediaPipe's loop writes nothing either). MediaPipe 0.10.21 (the
legacy solution, max_num_faces as fkd's --max-faces) runs in its own virtual environment
under .cache/bench-mediapipe (or the one --mp-python names), created here on first use,
because it pins numpy<2. Runs of the two
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
from fkd.model.crop import CROP_SIZE
from fkd.model.detect import FaceDetector, detection_scale
from fkd.realtime import cli
from fkd.realtime.defaults import DETECT_EVERY, MAX_FACES, MIN_FACE
from fkd.realtime.live import LiveConfig, LiveSummary, run_live
from fkd.realtime.sources.video import open_video
from fkd.realtime.tracking.pipeline import live_pipeline

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


def mediapipe_run(python: Path, clip: Path, max_faces: int = 1, boxes: bool = False) -> dict:
    out = subprocess.run([python, HERE / "mediapipe_fps.py", clip, "--max-faces", str(max_faces),
                          *(["--boxes"] if boxes else [])],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def fkd_run(predictor: Predictor, clip: Path, args: argparse.Namespace,
            output: Path | None = None) -> tuple[LiveSummary, float]:
    """One headless run of fkd-live's loop, and the CPU ms it took per frame (all threads)."""
    pipeline = live_pipeline(predictor, live=False, max_faces=args.max_faces, detect_every=args.detect_every,
                             min_face=args.min_face, threshold=args.threshold)
    config = LiveConfig(output=output, headless=True, prefetch=not args.no_prefetch)
    cpu = time.process_time()
    summary = run_live(open_video(clip), pipeline, config)
    return summary, 1e3 * (time.process_time() - cpu) / max(summary.frames, 1)


def detector_cost(clips: list[Path], min_faces: list[int]) -> None:
    """ms per detector run, single-threaded, on every 10th frame (colour, as fkd-live hands it
    over) for each ``--min-face``, the frame size YuNet then sees, and its faces per frame
    (before the face score checks them)."""
    import cv2

    cv2.setNumThreads(1)
    detector = FaceDetector()
    print("| clip | " + " | ".join(f"--min-face {m}: ms (faces/frame) at size" for m in min_faces) + " |")
    print("|---|" + "---|" * len(min_faces))
    for clip in clips:
        cost: dict[int, list[float]] = {m: [] for m in min_faces}
        found = dict.fromkeys(min_faces, 0)
        with open_video(clip) as source:
            for frame in source:
                if frame.index % 10:
                    continue
                for m in min_faces:
                    t0 = time.perf_counter()
                    found[m] += len(detector.detect(frame.image, min_face=m))
                    cost[m].append(time.perf_counter() - t0)
                shape = frame.image.shape
        cells = []
        for m in min_faces:
            s = detection_scale(shape, m, None)
            cells.append(f"{1e3 * statistics.median(cost[m]):.1f} ({found[m] / len(cost[m]):.2f}) at "
                         f"{round(shape[1] * s)}x{round(shape[0] * s)}")
        print(f"| {clip.name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    clips = sorted((ROOT.parent / "shared" / "video").glob("*.mp4"))
    parser.add_argument("--clips", type=Path, nargs="*", default=clips)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=cli.THREADS)
    parser.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torchscript"])
    parser.add_argument("--detect-every", type=int, default=DETECT_EVERY)
    parser.add_argument("--min-face", type=int, default=MIN_FACE)
    parser.add_argument("--max-faces", type=int, default=MAX_FACES)
    parser.add_argument("--threshold", type=float, default=None, help="face score threshold (default: the weights')")
    parser.add_argument("--mp-python", type=Path, default=None, help="python of a venv with mediapipe 0.10.21")
    parser.add_argument("--no-prefetch", action="store_true", help="decode in the loop's thread")
    parser.add_argument("--no-mediapipe", action="store_true")
    parser.add_argument("--output-cost", action="store_true", help="also time fkd with --output .mp4 and .avi")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    parser.add_argument("--detector-cost", action="store_true", help="time one detector run, alone, and stop")
    args = parser.parse_args()
    if not args.clips:
        sys.exit("no clips: ../shared/video is missing; pass --clips.")
    if args.detector_cost:
        detector_cost(args.clips, sorted({10, MIN_FACE, 2 * MIN_FACE, 4 * MIN_FACE, args.min_face}))
        return

    import cv2

    cv2.setNumThreads(args.threads)
    predictor = Predictor(args.weights, runtime=args.runtime, threads=args.threads)
    predictor(np.zeros((1, CROP_SIZE, CROP_SIZE), np.uint8))  # warm-up, as MediaPipe's first frame
    mp_python = None if args.no_mediapipe else (args.mp_python or mediapipe_python())
    print(f"fkd: runtime {predictor.runtime}, threads {args.threads}, face score "
          f"{'on' if predictor.has_score else 'absent'}, detect every {args.detect_every} "
          f"frames, min face {args.min_face} px, max faces {args.max_faces}, decode "
          f"{'inline' if args.no_prefetch else 'in a reader thread'}; {os.cpu_count()} CPUs")
    results = []
    for clip in args.clips:
        fkd, cpu, mp = [], [], []
        for _ in range(args.repeats):
            summary, cpu_ms = fkd_run(predictor, clip, args)
            fkd.append(summary)
            cpu.append(cpu_ms)
            if mp_python:
                mp.append(mediapipe_run(mp_python, clip, args.max_faces))
        best = sorted(fkd, key=lambda s: s.fps)[len(fkd) // 2]
        row = {"clip": clip.name, "frames": best.frames, "fkd_fps": statistics.median(s.fps for s in fkd),
               "fkd_cpu_ms": statistics.median(cpu), "fkd_face_share": best.frames_with_face / best.frames,
               "fkd_stages_ms": best.stages, "fkd_detector_runs": best.detections,
               "fkd_detector_waits": best.detection_waits}
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
    print("| clip | " + " | ".join(stages) + " | detector runs | waited for |")
    print("|---|" + "---|" * (len(stages) + 2))
    for r in results:
        cells = [f"{r['fkd_stages_ms'][s][0]:.2f} / {r['fkd_stages_ms'][s][1]:.2f}" if s in r["fkd_stages_ms"]
                 else "-" for s in stages]
        print(f"| {r['clip']} | " + " | ".join(cells) + f" | {r['fkd_detector_runs']} | {r['fkd_detector_waits']} |")


if __name__ == "__main__":
    main()
