"""NME end to end, photo in and keypoints out, on the held-out 300-W photos: what fkd-predict
gives, and how its second look should be taken.

    python bench/photo_nme.py                       # shipped weights, every variant
    python bench/photo_nme.py --weights runs/x/fkd.pt --variants square "square x2"

The hidden 300-W common test is scored this way: the photo goes through fkd's detector, the
face score, the first look from the detector's box and the second look from the first
keypoints (``realtime.pipeline.PhotoPipeline``). fkd-train's validation NME scores only the
first look at stored detector crops. Faces are the validation split (id buckets 0-99) and
the untouched test split (100-199) of train/data/faceset.py; choose on validation only.

A face counts as found when a reported face's box overlaps the box of its 68 labelled points
with IoU >= 0.3 (bench/photo_misses.py's rule; the best-overlapping face is scored); missed
faces are counted and left out of the NME. NME is fkd's (15 points, over the outer eye
corners' distance: train/evaluation/metrics.py), per face, from the 68 labelled points mapped to 15.

Variants of the second look:
- ``square``: the keypoint square the live tracker cuts, reported alone;
- ``square+mean``: the same, averaged with the first look's keypoints;
- ``upright``: the crop turned so that the face stands upright (model.crop.upright_crop);
- ``upright+mean``: that, averaged with the first look;
- ``square x2``, ``square x3``: a third (and fourth) look, each cut from the keypoints of the one
  before; ``square x2+mean`` averages the last two.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from photo_misses import FOLDERS, MATCH_IOU, held_out, labelled_box  # this folder is on sys.path
from rich.progress import track

from fkd.model.artifact import Predictor
from fkd.model.crop import box_iou
from fkd.model.schema import KEYPOINTS, ibug68_to_kaggle15
from fkd.realtime.tracking.pipeline import photo_pipeline
from fkd.train.data.pts import read_pts
from fkd.train.evaluation.metrics import keypoint_metrics

ROOT = Path(__file__).resolve().parents[1]
#: name -> (looks in all, upright, average the last two)
VARIANTS = {"square": (2, False, False), "square+mean": (2, False, True), "upright": (2, True, False),
            "upright+mean": (2, True, True), "square x2": (3, False, False), "square x2+mean": (3, False, True),
            "square x3": (4, False, False)}
SPLITS = {"validation": range(0, 100), "test": range(100, 200)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "300w")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-flip", dest="flip", action="store_false", help="one look per crop, unmirrored")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    predictor = Predictor(args.weights, threads=args.threads, flip=args.flip)
    pipelines = {v: photo_pipeline(predictor, looks=VARIANTS[v][0], upright=VARIANTS[v][1], average=VARIANTS[v][2])
                 for v in args.variants}
    photos = [photo for folder in FOLDERS for photo in held_out(args.data / folder, 200)]
    print(f"weights {predictor.path} ({predictor.runtime}, flip {'on' if args.flip else 'off'}); "
          f"{len(photos)} held-out photos")
    found: dict[str, dict[str, list]] = {v: {s: [] for s in SPLITS} for v in args.variants}
    truth: dict[str, list] = {s: [] for s in SPLITS}
    missed = {v: {s: 0 for s in SPLITS} for v in args.variants}
    for image_path, pts, bucket in track(photos, description="photos"):
        image = cv2.imread(str(image_path))
        points68 = read_pts(pts)
        box = labelled_box(points68)
        split = next(s for s, r in SPLITS.items() if bucket in r)
        truth[split].append(ibug68_to_kaggle15(points68))
        for v, pipeline in pipelines.items():
            faces = pipeline.process(image)
            best = max(faces, key=lambda f: box_iou(f.box, box), default=None)
            if best is None or box_iou(best.box, box) < MATCH_IOU:
                missed[v][split] += 1
                found[v][split].append(None)
            else:
                found[v][split].append(best.keypoints)
    print("\n| second look | val NME % | val missed | test NME % | test missed |")
    print("|---|---|---|---|---|")
    per_kp = {}
    for v in args.variants:
        cells = []
        for s in SPLITS:
            hit = [i for i, p in enumerate(found[v][s]) if p is not None]
            pred = np.stack([found[v][s][i] for i in hit])
            target = np.stack([truth[s][i] for i in hit])
            m = keypoint_metrics(pred, target, np.ones(target.shape[:2], bool))
            per_kp[v, s] = m["per_keypoint"]
            cells += [f"{100 * m['nme']:.3f}", f"{missed[v][s]} of {len(truth[s])}"]
        print(f"| {v} | " + " | ".join(cells) + " |")
    print("\nvalidation NME % per keypoint")
    print(f"{'keypoint':26s} " + " ".join(f"{v:>13s}" for v in args.variants))
    for k in KEYPOINTS:
        print(f"{k:26s} " + " ".join(f"{100 * per_kp[v, 'validation'][k]['nme']:13.2f}" for v in args.variants))


if __name__ == "__main__":
    main()
