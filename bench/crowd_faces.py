"""How many of a busy clip's faces fkd-live reports, against YuNet's own faces at full size,
and a contact sheet of every face it reports in ten evenly spaced frames.

    python bench/crowd_faces.py                       # crowd_walk and three_people_lab, shipped weights
    python bench/crowd_faces.py --weights runs/x/fkd.pt --min-face 30

fkd runs exactly as ``fkd-live --video CLIP --headless --export`` does (file mode: detection at
fixed frames, so the figures repeat). The reference is YuNet itself on every frame at full
size (score >= --ref-score), in this process, before fkd runs. A reference face counts as
found when a face fkd reports on that frame has its nose tip inside the reference box grown
by a fifth; the share is also given for the reference faces at least --min-face wide (the
smallest fkd-live is set to look for). fkd's faces that match no reference face are counted
too: look at them on the contact sheet (docs/<clip>_faces.png), where each reported face is cut
from the frame with its keypoints, its id and its score; a face there that is not a face is a
defect.

With MediaPipe at hand (bench/live_fps.py's venv, created on first use; ``--no-mediapipe`` to
skip), its Face Mesh (legacy, max_num_faces as --max-faces) runs on the clip too: the share of
its faces (one per face per frame, by the mesh's bounds) that fkd reports on the same frame,
and whole-process speed, start to exit, as a user pays it: ``fkd-live --video CLIP --headless
--export FILE`` against ``bench/mediapipe_fps.py CLIP`` (decode and Face Mesh), each the
median of --repeats runs, alternating.

With dlib installed (the teacher extra, ``pip install "fkd[teacher]"``; ``--no-dlib`` to skip),
dlib's HOG frontal face detector (``get_frontal_face_detector``, the detector dlib's 68-point
predictor pairs with) runs on every frame, upsampled ``--dlib-upsample`` times: the share of
its faces that fkd reports on the same frame, by the same nose-tip rule.
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
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
from live_fps import mediapipe_python, mediapipe_run  # this folder is on sys.path

from fkd.model.artifact import Predictor
from fkd.model.detect import YUNET_SMALLEST, FaceDetector
from fkd.realtime.defaults import DETECT_EVERY, MAX_FACES, MIN_FACE
from fkd.realtime.live import LiveConfig, run_live
from fkd.realtime.sources.video import open_video
from fkd.realtime.tracking.pipeline import live_pipeline

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ("crowd_walk_640x360.mp4", "three_people_lab_640x480.mp4")
TILE = 96


def reference_faces(clip: Path, score: float) -> list[list[tuple[int, int, int, int]]]:
    """YuNet's boxes on every frame at full size, score >= ``score``."""
    detector = FaceDetector()
    out = []
    with open_video(clip) as source:
        for frame in source:
            out.append([d.box for d in detector.detect(frame.image, min_face=YUNET_SMALLEST) if d.score >= score])
    return out


def dlib_faces(clip: Path, upsample: int) -> list[list[tuple[int, int, int, int]]]:
    """dlib's HOG detector's boxes on every frame, as (x, y, w, h)."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    out = []
    with open_video(clip) as source:
        for frame in source:
            rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
            out.append([(r.left(), r.top(), r.width(), r.height()) for r in detector(rgb, upsample)])
    return out


def share_found(records: list[dict], boxes: list[list[tuple[int, int, int, int]]]) -> tuple[float, float]:
    """(the reference's faces per frame, the share of them fkd reports on the same frame)."""
    total = sum(len(b) for b in boxes)
    found = sum(any(inside(face["keypoints"]["nose_tip"], b) for face in record["faces"])
                for record, frame_boxes in zip(records, boxes) for b in frame_boxes)
    return total / max(len(records), 1), found / max(total, 1)


def inside(point: list[float], box: tuple[int, int, int, int], grow: float = 1.2) -> bool:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return abs(point[0] - cx) <= grow * w / 2 and abs(point[1] - cy) <= grow * h / 2


def contact_sheet(clip: Path, records: list[dict], path: Path, frames: int = 10) -> int:
    """Every reported face of ``frames`` evenly spaced frames, cut from the frame with its
    keypoints, in one PNG; returns how many faces it shows."""
    want = set(np.linspace(0, len(records) - 1, frames).astype(int).tolist())
    tiles = []
    with open_video(clip) as source:
        for frame in source:
            if frame.index not in want:
                continue
            for face in records[frame.index]["faces"]:
                x, y, w, h = face["box"]
                side = max(w, h)
                x0, y0 = int(x + w / 2 - side / 2), int(y + h / 2 - side / 2)
                pad = cv2.copyMakeBorder(frame.image, side, side, side, side, cv2.BORDER_CONSTANT)
                cut = pad[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side]
                k = TILE / side
                tile = cv2.resize(cut, (TILE, TILE), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
                for px, py in face["keypoints"].values():
                    cv2.circle(tile, (round((px - x0) * k), round((py - y0) * k)), 1, (0, 255, 0), -1)
                label = np.zeros((14, TILE, 3), np.uint8)
                cv2.putText(label, f"f{frame.index} #{face['id']} {face['score']:.2f}", (2, 10),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1, cv2.LINE_AA)
                tiles.append(np.vstack([tile, label]))
    if not tiles:
        return 0
    cols = 12
    blank = np.zeros_like(tiles[0])
    rows = [np.hstack(tiles[i:i + cols] + [blank] * (cols - len(tiles[i:i + cols])))
            for i in range(0, len(tiles), cols)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows))
    return len(tiles)


def whole_processes(clip: Path, mp_python: Path, args: argparse.Namespace) -> tuple[float, float]:
    """Median wall seconds of the fkd-live process and of the MediaPipe process on ``clip``."""
    fkd_live = Path(sys.executable).parent / "fkd-live"
    fkd_s, mp_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run([fkd_live, "--video", clip, "--headless", "--export", Path(tmp) / "k.jsonl",
                            "--max-faces", str(args.max_faces), "--min-face", str(args.min_face),
                            "--detect-every", str(args.detect_every),
                            *(["--weights", args.weights] if args.weights else [])],
                           check=True, capture_output=True)
            fkd_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run([mp_python, ROOT / "bench" / "mediapipe_fps.py", clip, "--max-faces", str(args.max_faces)],
                           check=True, capture_output=True,
                           env={**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"})
            mp_s.append(time.perf_counter() - start)
    return statistics.median(fkd_s), statistics.median(mp_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, nargs="*",
                        default=[ROOT.parent / "shared" / "video" / name for name in CLIPS])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--min-face", type=int, default=MIN_FACE)
    parser.add_argument("--max-faces", type=int, default=MAX_FACES)
    parser.add_argument("--detect-every", type=int, default=DETECT_EVERY)
    parser.add_argument("--ref-score", type=float, default=0.6)
    parser.add_argument("--sheets", type=Path, default=ROOT / "docs", help="folder for the contact sheets")
    parser.add_argument("--no-mediapipe", action="store_true")
    parser.add_argument("--no-dlib", action="store_true")
    parser.add_argument("--dlib-upsample", type=int, default=1, help="dlib's upsampling: 1 finds faces from "
                        "about 40 px")
    parser.add_argument("--repeats", type=int, default=3, help="whole-process runs of each, alternating")
    args = parser.parse_args()
    mp_python = None if args.no_mediapipe else mediapipe_python()
    with_dlib = not args.no_dlib and find_spec("dlib") is not None

    cv2.setNumThreads(1)
    predictor = Predictor(args.weights, threads=1)
    print(f"weights {predictor.path}, min face {args.min_face} px, max faces {args.max_faces}, detect every "
          f"{args.detect_every} frames while tracking, reference: YuNet "
          f"at full size, score >= {args.ref_score}\n")
    print("| clip | frames | fkd faces/frame | YuNet faces/frame | YuNet's faces found "
          "| YuNet's faces >= min face found | fkd faces matching none | fkd fps | sheet faces "
          "| MediaPipe faces/frame | MediaPipe's faces found | fkd-live process | MediaPipe process "
          "| fkd speed / MediaPipe | dlib faces/frame | dlib's faces found |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for clip in args.clips:
        reference = reference_faces(clip, args.ref_score)
        with tempfile.TemporaryDirectory() as tmp:
            export = Path(tmp) / "k.jsonl"
            pipeline = live_pipeline(predictor, live=False, max_faces=args.max_faces, min_face=args.min_face,
                                     detect_every=args.detect_every)
            start = time.perf_counter()
            summary = run_live(open_video(clip), pipeline, LiveConfig(export=str(export), headless=True))
            seconds = time.perf_counter() - start
            records = [json.loads(line) for line in export.read_text().splitlines()]
        extra = reported = 0
        for record, boxes in zip(records, reference):
            noses = [face["keypoints"]["nose_tip"] for face in record["faces"]]
            reported += len(noses)
            extra += sum(not any(inside(n, b) for b in boxes) for n in noses)
        per_frame, share = share_found(records, reference)
        # the faces at least --min-face wide, the smallest fkd-live is set to look for
        sought = [[b for b in boxes if b[2] >= args.min_face] for boxes in reference]
        _, sought_share = share_found(records, sought)
        shown = contact_sheet(clip, records, args.sheets / f"{clip.stem}_faces.png")
        n = len(records)
        mp_cells = "- | - | - | - | -"
        if mp_python is not None:
            mp_per_frame, mp_share = share_found(records, mediapipe_run(mp_python, clip, args.max_faces,
                                                                        boxes=True)["boxes"])
            fkd_s, mp_s = whole_processes(clip, mp_python, args)
            mp_cells = (f"{mp_per_frame:.2f} | {100 * mp_share:.1f} % | {fkd_s:.2f} s | {mp_s:.2f} s "
                        f"| {mp_s / fkd_s:.2f}x")
        dlib_cells = "- | -"
        if with_dlib:
            dlib_per_frame, dlib_share = share_found(records, dlib_faces(clip, args.dlib_upsample))
            dlib_cells = f"{dlib_per_frame:.2f} | {100 * dlib_share:.1f} %"
        print(f"| {clip.name} | {n} | {reported / n:.2f} | {per_frame:.2f} | {100 * share:.1f} % "
              f"| {100 * sought_share:.1f} % ({sum(map(len, sought)) / n:.2f}/frame) | {extra} "
              f"| {summary.frames / seconds:.1f} | {shown} | {mp_cells} | {dlib_cells} |", flush=True)


if __name__ == "__main__":
    main()
