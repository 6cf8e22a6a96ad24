"""Calibrate the crop convention: where must the square sit, relative to a Haar box, so that
crops frame faces as Kaggle's training crops do?

    python bench/calibrate_crop.py ../shared/data/300w

For every photo whose labelled face the detector finds, the 15 keypoints are expressed in
units of the box (origin at the box centre, scale = box width). Kaggle's mean layout K then
satisfies K - 47.5 = (96 / side) * (u - shift) in the least-squares sense; solve for side and
shift, and print the residual per keypoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from fkd.model.crop import CROP_SIZE, CropConvention, box_iou, square_from_box, to_crop
from fkd.model.detect import FaceDetector
from fkd.model.schema import KAGGLE_MEAN, KEYPOINTS, ibug68_to_kaggle15
from fkd.train.pts import find_pairs, read_pts


def main(root: str) -> None:
    det = FaceDetector()
    units, total = [], 0
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for img, pts in find_pairs(folder):
            total += 1
            kp = ibug68_to_kaggle15(read_pts(pts))
            gray = cv2.imread(str(img), cv2.IMREAD_GRAYSCALE)
            lo, hi = kp.min(0), kp.max(0)
            ref = np.array([*lo, *(hi - lo)])
            boxes = [np.array(b, float) for b in det.detect(gray)]
            boxes = [b for b in boxes if box_iou(b, ref) > 0.2]
            if not boxes:
                continue
            b = max(boxes, key=lambda b: box_iou(b, ref))
            centre = b[:2] + b[2:] / 2
            units.append((kp - centre) / b[2])
    u = np.stack(units)
    print(f"detector found the labelled face in {len(u)}/{total} photos ({100 * len(u) / total:.1f} %)")
    um = u.mean(0)
    # K - c = a * um + t, with a = size/side and t = -a * shift: linear least squares in (a, tx, ty)
    c = (CROP_SIZE - 1) / 2
    rows = []
    rhs = []
    for k in range(len(KEYPOINTS)):
        rows += [[um[k, 0], 1, 0], [um[k, 1], 0, 1]]
        rhs += [KAGGLE_MEAN[k, 0] - c, KAGGLE_MEAN[k, 1] - c]
    (a, tx, ty), *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    conv = CropConvention(shift_x=float(-tx / a), shift_y=float(-ty / a), side=float(CROP_SIZE / a))
    print(f"CropConvention(shift_x={conv.shift_x:.4f}, shift_y={conv.shift_y:.4f}, side={conv.side:.4f})")
    # check on integer squares as the app makes them: mean crop position per keypoint vs Kaggle
    box = np.array([1000.0, 1000.0, 200.0, 200.0])
    sq = square_from_box(box, conv)
    mean_crop = to_crop(um * box[2] + box[:2] + box[2:] / 2, sq)
    off = mean_crop - KAGGLE_MEAN
    print(f"{'keypoint':28s} {'fkd mean':>14s} {'kaggle mean':>14s} {'offset':>14s}")
    for name, m, k, o in zip(KEYPOINTS, mean_crop, KAGGLE_MEAN, off):
        print(f"{name:28s} ({m[0]:5.1f}, {m[1]:5.1f}) ({k[0]:5.1f}, {k[1]:5.1f}) ({o[0]:+5.2f}, {o[1]:+5.2f})")
    print(f"mean |offset| {np.linalg.norm(off, axis=1).mean():.2f} px, max {np.linalg.norm(off, axis=1).max():.2f} px")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/300w")
