"""The 68-point model end to end: ``fkd-predict --points 68`` on the held-out 300-W photos, its
68-point NME and that of the 15 keypoints it derives, and a contact sheet of the faces.

    python bench/photo_nme68.py                                   # the shipped weights/fkd68
    python bench/photo_nme68.py --weights runs/fkd68/fkd.pt --sheet /tmp/sheet.png

fkd-predict runs as a separate process on a list of the photos (exactly what a user runs, flip
averaging on by default), and its ``--export`` records are scored here. Faces are the validation
split (id buckets 0-99) and the untouched test split (100-199) of ``train/data/faceset.py``; a
face counts as found when a reported face's box overlaps the box of its 68 labelled points with
IoU >= 0.3 (bench/photo_misses.py's rule; the best-overlapping face is scored), and missed faces
are counted and left out of the NME. The 68-point NME is the mean point error over the distance
of the outer eye corners (iBUG 37 and 46, index 36 and 45), per face, as 300-W's papers report
it; the 15-point NME is fkd's (train/evaluation/metrics.py) on the ``keypoints`` the records
carry, against the labels mapped to 15, so it sits beside ``bench/photo_nme.py``'s figures for
the 15-point model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from photo_misses import FOLDERS, MATCH_IOU, held_out, labelled_box  # this folder is on sys.path

from fkd.model.crop import box_iou
from fkd.model.points import IBUG68_SET
from fkd.model.schema import IBUG68_NME_PAIR, KEYPOINTS, ibug68_to_kaggle15
from fkd.realtime.outputs.draw import draw_contours
from fkd.train.data.pts import read_pts
from fkd.train.evaluation.metrics import keypoint_metrics

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"validation": range(0, 100), "test": range(100, 200)}


def nme68(pred: np.ndarray, truth: np.ndarray) -> float:
    """One face's 68-point NME: mean point error over the outer eye corners' distance."""
    a, b = IBUG68_NME_PAIR
    return float(np.linalg.norm(pred - truth, axis=1).mean() / np.linalg.norm(truth[a] - truth[b]))


def contact_sheet(rows: list[tuple[Path, np.ndarray, np.ndarray]], path: Path, cols: int = 8, cell: int = 160) -> None:
    """Each face cut from its photo around the labelled points, the predicted 68 drawn as
    contours (yellow) over the labels (green dots)."""
    tiles = []
    for image_path, pred, truth in rows:
        image = cv2.imread(str(image_path))
        square = IBUG68_SET.square_from_points(truth).scaled(1.15)
        k = cell / square.side
        warp = np.array([[k, 0, -square.x0 * k], [0, k, -square.y0 * k]], np.float64)
        tile = cv2.warpAffine(image, warp, (cell, cell), flags=cv2.INTER_AREA)
        for x, y in truth * k - (square.x0 * k, square.y0 * k):
            cv2.circle(tile, (round(x), round(y)), 1, (80, 220, 80), -1)
        draw_contours(tile, pred * k - (square.x0 * k, square.y0 * k), 1)
        tiles.append(tile)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    cv2.imwrite(str(path), grid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "300w")
    parser.add_argument("--weights", type=Path, default=None, help="default: the shipped 68-point model")
    parser.add_argument("--sheet", type=Path, default=None, help="write a contact sheet of test faces here")
    parser.add_argument("--sheet-faces", type=int, default=48)
    args = parser.parse_args()

    photos = [photo for folder in FOLDERS for photo in held_out(args.data / folder, 200)]
    with tempfile.TemporaryDirectory() as tmp:
        listing, export = Path(tmp) / "photos.txt", Path(tmp) / "faces.jsonl"
        listing.write_text("".join(f"{image.resolve()}\n" for image, _, _ in photos))
        command = [str(Path(sys.executable).parent / "fkd-predict"), str(listing), "--points", "68",
                   "--export", str(export)] + (["--weights", str(args.weights)] if args.weights else [])
        print(f"$ fkd-predict <a list of {len(photos)} held-out photos> --points 68 --export faces.jsonl"
              + (f" --weights {args.weights}" if args.weights else ""))
        subprocess.run(command, check=True)
        records = {Path(r["image"]).resolve(): r for r in map(json.loads, export.read_text().splitlines())}
    scores: dict[str, dict[str, list]] = {s: {"nme68": [], "pred15": [], "truth15": [], "missed": []} for s in SPLITS}
    sheet = []
    for image, pts, bucket in photos:
        split = next(s for s, r in SPLITS.items() if bucket in r)
        truth = read_pts(pts)
        box = labelled_box(truth)
        faces = records[image.resolve()]["faces"]
        best = max(faces, key=lambda f: box_iou(f["box"], box), default=None)
        if best is None or box_iou(best["box"], box) < MATCH_IOU:
            scores[split]["missed"].append(image.name)
            continue
        pred = np.array(best["points68"], np.float64)
        scores[split]["nme68"].append(nme68(pred, truth))
        scores[split]["pred15"].append(np.array([best["keypoints"][k] for k in KEYPOINTS]))
        scores[split]["truth15"].append(ibug68_to_kaggle15(truth))
        if split == "test" and len(sheet) < args.sheet_faces:
            sheet.append((image, pred, truth))
    print("\n| split | faces | missed | 68-point NME % | 15 derived NME % |")
    print("|---|---|---|---|---|")
    for s, d in scores.items():
        m15 = keypoint_metrics(np.stack(d["pred15"]), np.stack(d["truth15"]), np.ones((len(d["pred15"]), 15), bool))
        n = len(d["nme68"]) + len(d["missed"])
        print(f"| {s} | {n} | {len(d['missed'])} | {100 * np.mean(d['nme68']):.2f} | {100 * m15['nme']:.2f} |")
        if d["missed"]:
            print(f"  missed: {', '.join(d['missed'])}")
    if args.sheet:
        contact_sheet(sheet, args.sheet)
        print(f"contact sheet of {len(sheet)} test faces: {args.sheet}")


if __name__ == "__main__":
    main()
