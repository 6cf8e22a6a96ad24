"""Scene cuts: the cut threshold's margins on the shared clips, and the frames fkd-live loses after a cut.

    python bench/cuts.py                 # both parts, shipped weights
    python bench/cuts.py --no-calibrate  # only the frames lost

No shared clip has a cut, so both parts join shared clips end to end (the second resized to the
first's size).

Calibration: the difference realtime/tracking/cuts.py measures (``difference`` of two
``thumbnail``s) between every two consecutive frames of each shared clip, which must stay under
``CUT_MAD``, and between the last frame of each clip and the first of every other (and their
middle frames), which must clear it.

Frames lost: each joined clip (``JOINS``) is written with cv2.VideoWriter (mp4v) into a temporary
folder and run as ``fkd-live --video CLIP --headless --export`` does (file mode). For the
``--after`` frames from each cut on, a frame is lost when YuNet at full size (score >=
--ref-score, as bench/crowd_faces.py) sees a face there and fkd reports none; "YuNet's faces
found" is the share of YuNet's faces there with a reported nose tip inside (crowd_faces.inside).
"Old ids after the cut" counts faces reported after the cut with an id the first shot had.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from crowd_faces import inside, reference_faces  # this folder is on sys.path

from fkd.model.artifact import Predictor
from fkd.realtime.live import LiveConfig, run_live
from fkd.realtime.sources.video import open_video
from fkd.realtime.tracking.cuts import CUT_MAD, difference, thumbnail
from fkd.realtime.tracking.pipeline import live_pipeline

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "video"
#: (first clip, its frames, second clip, its frames): the cut falls after the first's frames,
#: at frame numbers that are no multiple of the detector's pace.
JOINS = (
    ("talking_head_512.mp4", (0, 41), "three_people_lab_640x480.mp4", (100, 160)),
    ("three_people_lab_640x480.mp4", (0, 47), "talking_head_512.mp4", (60, 120)),
    ("crowd_walk_640x360.mp4", (0, 38), "three_people_lab_640x480.mp4", (300, 360)),
    ("webcam_320x240.mp4", (0, 44), "webcam_640x360_backlit.mp4", (0, 60)),
    ("three_people_lab_640x480.mp4", (200, 252), "crowd_walk_640x360.mp4", (40, 100)),
)


def read_frames(clip: Path, start: int = 0, stop: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(clip))
    frames = []
    index = 0
    while stop is None or index < stop:
        ok, frame = cap.read()
        if not ok:
            break
        if index >= start:
            frames.append(frame)
        index += 1
    cap.release()
    return frames


def join(first: list[np.ndarray], second: list[np.ndarray]) -> list[np.ndarray]:
    """``first`` then ``second`` resized to the first's size."""
    h, w = first[0].shape[:2]
    return first + [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in second]


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 25) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def calibrate() -> None:
    clips = {p.name: read_frames(p) for p in sorted(VIDEO.glob("*.mp4"))}
    print(f"threshold CUT_MAD = {CUT_MAD}\n")
    print("| clip | frames | consecutive: max | 99th percentile | median |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for name, frames in clips.items():
        thumbs = [thumbnail(f) for f in frames]
        diffs = [difference(a, b) for a, b in itertools.pairwise(thumbs)]
        worst = max(worst, max(diffs))
        print(f"| {name} | {len(frames)} | {max(diffs):.2f} | {np.percentile(diffs, 99):.2f} | "
              f"{np.median(diffs):.2f} |")
    joins = []
    for (a, fa), (b, fb) in itertools.permutations(clips.items(), 2):
        for ia, ib in ((-1, 0), (len(fa) // 2, len(fb) // 2)):
            pair = join([fa[ia]], [fb[ib]])
            joins.append((difference(thumbnail(pair[0]), thumbnail(pair[1])), a, b))
    joins.sort()
    low, a, b = joins[0]
    print(f"\njoins: {len(joins)} (each ordered pair of clips, end to start and middle to middle), "
          f"smallest {low:.2f} ({a} then {b}), all above the threshold: {all(d > CUT_MAD for d, *_ in joins)}")
    print(f"margins: the threshold is {CUT_MAD / worst:.2f}x the largest real step ({worst:.2f}) and "
          f"{CUT_MAD / low:.2f}x the smallest join ({low:.2f})\n")


def frames_lost(predictor: Predictor, args: argparse.Namespace) -> None:
    print("| joined clip | cut at frame | frames after it | with a YuNet face | lost | YuNet's faces found "
          "| frames lost before the first face | old ids after the cut |")
    print("|---|---|---|---|---|---|---|---|")
    total_seen = total_lost = 0
    with tempfile.TemporaryDirectory() as tmp:
        for a, (a0, a1), b, (b0, b1) in JOINS:
            frames = join(read_frames(VIDEO / a, a0, a1), read_frames(VIDEO / b, b0, b1))
            cut = a1 - a0
            clip = write_clip(Path(tmp) / f"{Path(a).stem}+{Path(b).stem}.mp4", frames)
            reference = reference_faces(clip, args.ref_score)
            export = Path(tmp) / "k.jsonl"
            pipeline = live_pipeline(predictor, live=False)
            run_live(open_video(clip), pipeline, LiveConfig(export=str(export), headless=True))
            records = [json.loads(line) for line in export.read_text().splitlines()]
            window = range(cut, min(cut + args.after, len(records)))
            seen = [i for i in window if reference[i]]
            lost = [i for i in seen if not records[i]["faces"]]
            faces = sum(len(reference[i]) for i in window)
            found = sum(any(inside(f["keypoints"]["nose_tip"], box) for f in records[i]["faces"])
                        for i in window for box in reference[i])
            first = next((i - cut for i in window if records[i]["faces"]), None)
            old = {f["id"] for r in records[:cut] for f in r["faces"]}
            stale = sum(f["id"] in old for r in records[cut:] for f in r["faces"])
            total_seen, total_lost = total_seen + len(seen), total_lost + len(lost)
            print(f"| {clip.name} | {cut} | {len(window)} | {len(seen)} | {len(lost)} "
                  f"| {found} of {faces} | {first} | {stale} |", flush=True)
    print(f"\nin all: {total_lost} of {total_seen} frames with a YuNet face in the {args.after} frames after a cut "
          f"have no face reported")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--after", type=int, default=8, help="frames from each cut on that are checked")
    parser.add_argument("--ref-score", type=float, default=0.6)
    parser.add_argument("--no-calibrate", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if not args.no_calibrate:
        calibrate()
    frames_lost(Predictor(args.weights, threads=1), args)


if __name__ == "__main__":
    main()
