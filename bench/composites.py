"""False faces and whole-process speed where faces come and go, against MediaPipe Face Mesh.

    python bench/composites.py --mp-python /tmp/mp/bin/python            # shipped weights
    python bench/composites.py --weights runs/interim/fkd.pt --mp-python /tmp/mp/bin/python

The shared clips hold one face each, so the material is built here, at run time, into a
temporary folder (nothing is written beside the clips):

- ``pair``: two clips side by side (360x360 each), with stretches where one side or both
  are blanked (flat grey with camera noise) and a cut on the left side to another person;
- ``cuts``: one clip after another, full frame, with blank stretches between some of them;
- ``three_people_lab_640x480.mp4`` and ``crowd_walk_640x360.mp4`` as shipped.

The blanked stretches are ground truth: a face fkd reports whose box centre lies in a
blanked region is a false face. "found" is the share of frames on which a region that shows
a face holds a reported face (the shared clips show their face on every frame). Speed is
fkd-live's whole loop, headless (bench/live_fps.py), and MediaPipe's legacy Face Mesh with
the same most-faces number (bench/mediapipe_fps.py, in its own venv), alternating, the
median of --repeats runs each. On a busy machine both slow alike, but not exactly alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fkd.model.artifact import Predictor
from fkd.model.crop import CROP_SIZE
from fkd.realtime import cli
from fkd.realtime.defaults import MAX_FACES
from fkd.realtime.live import LiveConfig, run_live
from fkd.realtime.sources.video import open_video
from fkd.realtime.tracking.pipeline import live_pipeline

HERE = Path(__file__).resolve().parent
VIDEO = HERE.parents[1] / "shared" / "video"
SIDE = 360
FPS = 25.0


def square_frames(path: Path) -> Iterator[np.ndarray]:
    """The clip's frames, centre-cropped to a square and resized to SIDE, looping forever."""
    while True:
        cap = cv2.VideoCapture(str(path))
        while (frame := cap.read()[1]) is not None:
            h, w = frame.shape[:2]
            s = min(h, w)
            y0, x0 = (h - s) // 2, (w - s) // 2
            yield cv2.resize(frame[y0:y0 + s, x0:x0 + s], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        cap.release()


@dataclass
class Composite:
    """A built clip and, per frame, its regions (x0, x1) that show a face and that are blank."""

    name: str
    path: Path
    faces: list[list[tuple[int, int]]] = field(default_factory=list)
    blank: list[list[tuple[int, int]]] = field(default_factory=list)


def build(name: str, folder: Path, columns: int, schedule: list[tuple[int, list[str | None]]]) -> Composite:
    """``schedule``: (frames, one clip name or None (blank) per column) stretches, in order."""
    sources = {clip: square_frames(VIDEO / clip) for _, cols in schedule for clip in cols if clip}
    rng = np.random.default_rng(0)
    comp = Composite(name, folder / f"{name}.avi")
    writer = cv2.VideoWriter(str(comp.path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (columns * SIDE, SIDE))
    for frames, cols in schedule:
        for _ in range(frames):
            tiles, faces, blank = [], [], []
            for i, clip in enumerate(cols):
                span = (i * SIDE, (i + 1) * SIDE)
                if clip is None:
                    tiles.append(np.clip(90 + rng.integers(-4, 5, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8))
                    blank.append(span)
                else:
                    tiles.append(next(sources[clip]))
                    faces.append(span)
            writer.write(np.hstack(tiles))
            comp.faces.append(faces)
            comp.blank.append(blank)
    writer.release()
    return comp


def composites(folder: Path) -> list[Composite]:
    a, b, c = "talking_head_512.mp4", "webcam_640x360_backlit.mp4", "webcam_320x240.mp4"
    pair = build("pair", folder, 2, [(50, [a, b]), (50, [None, b]), (50, [a, b]), (50, [c, b]), (50, [c, None]),
                                     (50, [None, None]), (50, [a, b])])
    cuts = build("cuts", folder, 1, [(50, [a]), (25, [None]), (50, [c]), (50, [b]), (25, [None]), (50, [a]),
                                     (50, [c])])
    return [pair, cuts]


def score_faces(comp: Composite, records: list[dict]) -> dict:
    """False faces (centre in a blank region) and the share of face regions with a face."""
    reported = false = regions = found = 0
    for frame, record in enumerate(records):
        centres = [f["box"][0] + f["box"][2] / 2 for f in record["faces"]]
        reported += len(centres)
        false += sum(any(x0 <= c < x1 for x0, x1 in comp.blank[frame]) for c in centres)
        regions += len(comp.faces[frame])
        found += sum(any(x0 <= c < x1 for c in centres) for x0, x1 in comp.faces[frame])
    return {"reported": reported, "false": false, "found": found / max(regions, 1)}


def fkd_run(predictor: Predictor, clip: Path, args: argparse.Namespace, export: Path | None) -> tuple[dict, float]:
    pipeline = live_pipeline(predictor, live=False, max_faces=args.max_faces, threshold=args.threshold)
    start = time.process_time()
    summary = run_live(open_video(clip), pipeline, LiveConfig(export=export, headless=True))
    return ({"fps": summary.fps, "frames": summary.frames, "faces_per_frame": summary.mean_faces,
             "detector_runs": summary.detections, "waits": summary.detection_waits},
            1e3 * (time.process_time() - start) / max(summary.frames, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--max-faces", type=int, default=MAX_FACES)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=cli.THREADS)
    parser.add_argument("--mp-python", type=Path, default=None, help="python of a venv with mediapipe 0.10.21")
    parser.add_argument("--no-mediapipe", action="store_true")
    parser.add_argument("--clips", nargs="*", default=["three_people_lab_640x480.mp4", "crowd_walk_640x360.mp4",
                                                       "talking_head_512.mp4"])
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    if not VIDEO.is_dir():
        sys.exit(f"no clips: {VIDEO} is missing.")
    sys.path.insert(0, str(HERE))
    from live_fps import mediapipe_python, mediapipe_run  # the same MediaPipe runner as bench/live_fps.py

    cv2.setNumThreads(args.threads)
    predictor = Predictor(args.weights, threads=args.threads)
    predictor.run(np.zeros((1, CROP_SIZE, CROP_SIZE), np.uint8))
    mp_python = None if args.no_mediapipe else (args.mp_python or mediapipe_python())
    print(f"fkd: weights {predictor.path}, face score {'on' if predictor.has_score else 'absent'}, threshold "
          f"{args.threshold if args.threshold is not None else predictor.threshold:.3f}, max faces {args.max_faces}, "
          f"threads {args.threads}; MediaPipe max_num_faces {args.max_faces}; median of {args.repeats} runs")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        built = composites(Path(tmp))
        clips: list[tuple[str, Path, Composite | None]] = [(c.name, c.path, c) for c in built]
        clips += [(name, VIDEO / name, None) for name in args.clips]
        for name, path, comp in clips:
            fkd, cpu, mp = [], [], []
            export = Path(tmp) / f"{name}.jsonl"
            for i in range(args.repeats):
                run, cpu_ms = fkd_run(predictor, path, args, export if i == 0 else None)
                fkd.append(run)
                cpu.append(cpu_ms)
                if mp_python:
                    mp.append(mediapipe_run(mp_python, path, args.max_faces))
            row = {"clip": name, "frames": fkd[0]["frames"], "fkd_fps": statistics.median(r["fps"] for r in fkd),
                   "fkd_cpu_ms": statistics.median(cpu), "fkd_faces_per_frame": fkd[0]["faces_per_frame"],
                   "detector_runs": fkd[0]["detector_runs"], "waits": fkd[0]["waits"]}
            if comp is not None:
                records = [json.loads(line) for line in export.read_text().splitlines()]
                row.update(score_faces(comp, records))
            if mp:
                row["mp_fps"] = statistics.median(m["fps"] for m in mp)
                row["mp_cpu_ms"] = statistics.median(m["cpu_ms_per_frame"] for m in mp)
                row["mp_face_share"] = mp[0]["frames_with_face"] / max(mp[0]["frames"], 1)
            rows.append(row)
            print(f"  {name}: fkd {row['fkd_fps']:.0f} fps" + (f", MediaPipe {row['mp_fps']:.0f} fps" if mp else ""),
                  file=sys.stderr, flush=True)
    print("\n| clip | frames | fkd fps | MediaPipe fps | fkd / MediaPipe | fkd CPU ms/frame | MediaPipe CPU ms/frame "
          "| fkd faces/frame | reported faces | false faces | face regions found | detector runs (waited) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mp_cells = (f"{r['mp_fps']:.0f} | {r['fkd_fps'] / r['mp_fps']:.2f}x" if "mp_fps" in r else "- | -")
        mp_cpu = f"{r['mp_cpu_ms']:.1f}" if "mp_cpu_ms" in r else "-"
        truth = (f"{r['reported']} | {r['false']} ({100 * r['false'] / max(r['reported'], 1):.1f} %) "
                 f"| {100 * r['found']:.1f} %" if "false" in r else "- | - | -")
        print(f"| {r['clip']} | {r['frames']} | {r['fkd_fps']:.0f} | {mp_cells} | {r['fkd_cpu_ms']:.1f} | {mp_cpu} "
              f"| {r['fkd_faces_per_frame']:.2f} | {truth} | {r['detector_runs']} ({r['waits']}) |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
