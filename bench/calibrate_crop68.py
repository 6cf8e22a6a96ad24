"""Calibrate the 68-point whole-face crop: its mean layout (the template the square is fitted
to) and the convention that frames it from YuNet's five points.

    python bench/calibrate_crop68.py ../shared/data/300w

The template is the mean 300-W shape under scale and shift (what ``model.crop.fit_square``
fits; no rotation), centred in the 96-px crop with its larger extent ``EXTENT`` of the crop
side, so the jaw of a turned or tilted head stays within the soft-argmax's reach (cell centres
1.5 .. 94.5) after augmentation. The script prints the share of faces with a point beyond that
reach for a few extents, and the convention (centre shift, side) as ``bench/calibrate_crop.py``
measures the 15-point one: the detector's five points' square against the one the 68 labelled
points ask for. Paste the printed arrays into ``fkd/model/points.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from fkd.model.crop import CROP_SIZE, CropConvention, box_iou, fit_square, square_from_landmarks, to_crop
from fkd.model.detect import FaceDetector
from fkd.model.schema import DETECTOR_POINTS, IBUG68_TO_15, INDEX
from fkd.train.data.pts import FACE_MIN_PX, find_pairs, read_pts

IDENTITY = CropConvention(0.0, 0.0, 1.0)
EXTENT = 0.66  # the mean shape's larger extent, in crop sides
REACH = (1.5, CROP_SIZE - 2.5)  # the heatmap's first and last cell centres


def mean_shape(shapes: np.ndarray, rounds: int = 10) -> np.ndarray:
    """The mean of ``shapes`` (N, 68, 2) aligned by scale and shift, with unit RMS radius."""
    def normalise(s: np.ndarray) -> np.ndarray:
        c = s - s.mean(0)
        return c / np.sqrt((c ** 2).sum(1).mean())

    mean = normalise(shapes[0])
    for _ in range(rounds):
        aligned = []
        for s in shapes:
            c = s - s.mean(0)
            a = (c * mean).sum() / (c * c).sum()
            aligned.append(c * a)
        mean = normalise(np.mean(aligned, 0))
    return mean


def place(mean: np.ndarray, extent: float) -> np.ndarray:
    """The unit mean shape scaled so its larger extent is ``extent`` crop sides, centred."""
    lo, hi = mean.min(0), mean.max(0)
    k = extent * CROP_SIZE / (hi - lo).max()
    return (mean - (lo + hi) / 2) * k + (CROP_SIZE - 1) / 2


def beyond_reach(points: np.ndarray) -> bool:
    return bool(((points < REACH[0]) | (points > REACH[1])).any())


def main(root: str) -> None:
    pairs = [pair for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()) for pair in find_pairs(folder)]
    shapes = np.stack([read_pts(pts) for _, pts in pairs])
    unit = mean_shape(shapes)
    print(f"{len(shapes)} faces")
    for extent in (0.62, 0.66, 0.70, 0.74):
        t = place(unit, extent)
        out = np.mean([beyond_reach(to_crop(s, fit_square(s, t))) for s in shapes])
        print(f"extent {extent:.2f}: {100 * out:.1f} % of faces framed by their own 68 points have a point "
              "beyond the heatmap's reach")
    template = place(unit, EXTENT)
    five = (IBUG68_TO_15 @ template)[[INDEX[n] for n in DETECTOR_POINTS]]
    det = FaceDetector()
    rel, crops = [], []
    for (img, _), s in zip(pairs, shapes):
        gray = cv2.imread(str(img), cv2.IMREAD_GRAYSCALE)
        lo, hi = s.min(0), s.max(0)
        ref = np.array([*lo, *(hi - lo)])
        found = [d for d in det.detect(gray, min_face=FACE_MIN_PX) if box_iou(d.box, ref) > 0.2]
        if not found:
            continue
        d = max(found, key=lambda d: box_iou(d.box, ref))
        want = fit_square(s, template)
        sq = square_from_landmarks(d.landmarks, IDENTITY, five)
        rel.append(((want.centre[0] - sq.centre[0]) / sq.side, (want.centre[1] - sq.centre[1]) / sq.side,
                    np.log(want.side / sq.side)))
        crops.append((s, d.landmarks))
    f = np.array(rel)
    conv = CropConvention(shift_x=float(f[:, 0].mean()), shift_y=float(f[:, 1].mean()),
                          side=float(np.exp(f[:, 2].mean())))
    print(f"detector found the labelled face in {len(f)}/{len(shapes)} photos")
    print(f"CropConvention(shift_x={conv.shift_x:.4f}, shift_y={conv.shift_y:.4f}, side={conv.side:.4f})")
    print(f"scatter (std of centre x, y in sides; of log side): {f[:, 0].std():.4f} {f[:, 1].std():.4f} "
          f"{f[:, 2].std():.4f}")
    out = np.mean([beyond_reach(to_crop(s, square_from_landmarks(p5, conv, five))) for s, p5 in crops])
    print(f"with the convention, {100 * out:.1f} % of detected faces have a point beyond the heatmap's reach")
    np.set_printoptions(precision=2, suppress=True, linewidth=118)
    print("WHOLE_FACE_MEAN = np.array(" + np.array2string(np.round(template, 2), separator=", ") + ")")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/300w")
