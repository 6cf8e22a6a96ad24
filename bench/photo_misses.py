"""How many held-out 300-W faces fkd-predict misses, per folder, and whether the detector proposed them.

    python bench/photo_misses.py                              # shipped weights
    python bench/photo_misses.py --weights runs/interim/fkd.pt

The held-out faces are those fkd-train holds out (train/data/faceset.py FaceSet.split): the id
``<folder>/<name>`` hashes (``train.faceset.id_bucket``) into a bucket below
``--buckets`` (200: a fifth of the faces). A face counts as missed when no face fkd-predict
reports overlaps its box (the box of its 68 labelled points) with IoU >= ``--iou`` (0.3: the
reported box is the crop square grown to hold the keypoints, larger than the labelled points'
box). "candidates missed" counts faces that no detector candidate overlaps that much, before
any face score.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from fkd.model.artifact import Predictor
from fkd.model.crop import box_iou
from fkd.realtime.tracking.pipeline import photo_pipeline
from fkd.train.data.faceset import id_bucket
from fkd.train.data.pts import face_id, find_pairs, read_pts

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("lfpw_train", "helen_train", "afw")
#: a reported face is the labelled one when its box overlaps the labelled points' box this much
MATCH_IOU = 0.3


def held_out(folder: Path, buckets: int) -> list[tuple[Path, Path, int]]:
    """(image, .pts, hash bucket) for the faces of ``folder`` whose id falls in the held-out buckets."""
    pairs = []
    for image, pts in find_pairs(folder):
        bucket = id_bucket(face_id(folder, image))
        if bucket < buckets:
            pairs.append((image, pts, bucket))
    return pairs


def labelled_box(points68: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, w, h) of a face's 68 labelled points: what a reported face must overlap."""
    lo, hi = points68.min(0), points68.max(0)
    return (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "300w")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--threshold", type=float, default=None, help="face score threshold (default: the weights')")
    parser.add_argument("--buckets", type=int, default=200)
    parser.add_argument("--iou", type=float, default=MATCH_IOU)
    parser.add_argument("--limit", type=int, default=None, help="at most this many faces per folder")
    parser.add_argument("--folders", nargs="*", default=list(FOLDERS))
    args = parser.parse_args()

    cv2.setNumThreads(1)
    predictor = Predictor(args.weights, threads=1)
    pipeline = photo_pipeline(predictor, args.threshold)
    print(f"weights {predictor.path} (face score {'on' if predictor.has_score else 'absent'}), threshold "
          f"{pipeline.threshold:.3f}, photos shrunk to {pipeline.max_side} px for detection, IoU >= {args.iou}")
    print("\n| folder | held-out faces | missed | missed % | candidates missed | reported faces per photo | s/photo |")
    print("|---|---|---|---|---|---|---|")
    for name in args.folders:
        pairs = held_out(args.data / name, args.buckets)[: args.limit]
        missed = candidates_missed = reported = 0
        seconds = 0.0
        for image_path, pts, _ in pairs:
            image = cv2.imread(str(image_path))
            truth = labelled_box(read_pts(pts))
            start = time.perf_counter()
            faces = pipeline.process(image)
            seconds += time.perf_counter() - start
            reported += len(faces)
            missed += max((box_iou(f.box, truth) for f in faces), default=0.0) < args.iou
            found = pipeline.detector.detect(image, max_side=pipeline.max_side, min_face=pipeline.min_face)
            candidates_missed += max((box_iou(d.box, truth) for d in found), default=0.0) < args.iou
        seconds /= max(len(pairs), 1)
        print(f"| {name} | {len(pairs)} | {missed} | {100 * missed / max(len(pairs), 1):.1f} % | {candidates_missed} "
              f"| {reported / max(len(pairs), 1):.2f} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
