"""Calibrate the crop convention: how must the square framed from YuNet's five points move
and grow so that crops frame faces as their own 15 labelled keypoints would?

    python bench/calibrate_crop.py ../shared/data/300w

For every photo whose labelled face the detector finds, the five points' keypoint square
(``model.crop.square_from_keypoints`` on the five, no convention) is compared with the square
the 15 labelled keypoints ask for. The convention is the mean centre offset (in the five-point
square's sides) and the geometric mean side ratio. It also prints the same for a crop cut from
YuNet's box (``model.crop.BOX_FRAMING``, for boxes callers pass to the API), how much each way
scatters around the labelled square, and the mean crop position of every keypoint against
Kaggle's mean layout with the calibrated convention.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from fkd.model.crop import CropConvention, box_iou, square_from_keypoints, square_from_landmarks, to_crop
from fkd.model.detect import FaceDetector
from fkd.model.schema import KAGGLE_MEAN, KEYPOINTS, ibug68_to_kaggle15
from fkd.train.data.pts import find_pairs, read_pts

IDENTITY = CropConvention(0.0, 0.0, 1.0)


def main(root: str) -> None:
    det = FaceDetector()
    five, boxes, labelled, total = [], [], [], 0
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for img, pts in find_pairs(folder):
            total += 1
            kp = ibug68_to_kaggle15(read_pts(pts))
            gray = cv2.imread(str(img), cv2.IMREAD_GRAYSCALE)
            lo, hi = kp.min(0), kp.max(0)
            ref = np.array([*lo, *(hi - lo)])
            found = [d for d in det.detect(gray) if box_iou(d.box, ref) > 0.2]
            if not found:
                continue
            d = max(found, key=lambda d: box_iou(d.box, ref))
            want = square_from_keypoints(kp)
            sq = square_from_landmarks(d.landmarks, IDENTITY)
            five.append(((want.centre[0] - sq.centre[0]) / sq.side, (want.centre[1] - sq.centre[1]) / sq.side,
                         np.log(want.side / sq.side)))
            x, y, w, h = d.box
            boxes.append(((want.centre[0] - x - w / 2) / w, (want.centre[1] - y - h / 2) / w, np.log(want.side / w)))
            labelled.append((kp, d.landmarks))
    f, b = np.array(five), np.array(boxes)
    print(f"detector found the labelled face in {len(f)}/{total} photos ({100 * len(f) / total:.1f} %)")
    conv = CropConvention(shift_x=float(f[:, 0].mean()), shift_y=float(f[:, 1].mean()),
                          side=float(np.exp(f[:, 2].mean())))
    print(f"CropConvention(shift_x={conv.shift_x:.4f}, shift_y={conv.shift_y:.4f}, side={conv.side:.4f})")
    print(f"BoxFraming(shift_x={b[:, 0].mean():.4f}, shift_y={b[:, 1].mean():.4f}, side={np.exp(b[:, 2].mean()):.4f})")
    print("scatter around the labelled square (std of centre x, y in sides; of log side):")
    print(f"  five points {f[:, 0].std():.4f} {f[:, 1].std():.4f} {f[:, 2].std():.4f}")
    print(f"  box         {b[:, 0].std():.4f} {b[:, 1].std():.4f} {b[:, 2].std():.4f}")
    mean_crop = np.mean([to_crop(kp, square_from_landmarks(five5, conv)) for kp, five5 in labelled], axis=0)
    off = mean_crop - KAGGLE_MEAN
    print(f"{'keypoint':28s} {'fkd mean':>14s} {'kaggle mean':>14s} {'offset':>14s}")
    for name, m, k, o in zip(KEYPOINTS, mean_crop, KAGGLE_MEAN, off):
        print(f"{name:28s} ({m[0]:5.1f}, {m[1]:5.1f}) ({k[0]:5.1f}, {k[1]:5.1f}) ({o[0]:+5.2f}, {o[1]:+5.2f})")
    print(f"mean |offset| {np.linalg.norm(off, axis=1).mean():.2f} px, max {np.linalg.norm(off, axis=1).max():.2f} px")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/300w")
