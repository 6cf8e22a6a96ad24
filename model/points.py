"""The point sets a weights file may predict, each with everything code needs to serve it.

fkd ships two models: Kaggle's 15 keypoints on a crop from the brows to the lips, and iBUG's
68 points on a crop of the whole face, jaw included. The facts about the points themselves
(names, flip partners, contours, the 68 -> 15 mapping) live in ``fkd.model.schema``; the
framing (the mean layout a crop square is fitted to, the detector convention) lives here for
the 68 and in ``fkd.model.crop`` for the 15. A ``PointSet`` bundles them, so the predictor,
flip averaging, re-cropping, drawing and training follow the weights' metadata
(``points_of``) instead of the 15 constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fkd.model.crop import (
    CONVENTION,
    CROP_SIZE,
    CropConvention,
    Square,
    fit_square,
    square_from_box,
    square_from_landmarks,
    to_frame,
)
from fkd.model.schema import (
    DETECTOR_POINTS,
    FLIP_PERMUTATION,
    IBUG68,
    IBUG68_CONTOURS,
    IBUG68_FLIP_PERMUTATION,
    IBUG68_NME_PAIR,
    IBUG68_TO_15,
    INDEX,
    KAGGLE_MEAN,
    KEYPOINTS,
    NME_NORM_PAIR,
    mirror_points,
)

#: The 68 points' mean layout in the whole-face crop (x, y crop pixels): the 300-W mean shape
#: under scale and shift, its larger extent 0.66 of the crop, so the jaw of a turned head stays
#: within the heatmap's reach. Made by ``python bench/calibrate_crop68.py`` (bench/RESULTS.md).
WHOLE_FACE_MEAN = np.array([
    (15.82, 28.57), (16.14, 36.93), (17.24, 45.27), (19.12, 53.39), (22.48, 60.9), (27.61, 67.43),
    (33.84, 72.87), (40.72, 77.16), (48.49, 78.22), (56.09, 76.76), (62.75, 72.2), (68.74, 66.59),
    (73.59, 59.93), (76.72, 52.3), (78.27, 44.12), (79.01, 35.83), (79.18, 27.52), (21.56, 21.99),
    (25.54, 18.46), (30.99, 17.41), (36.66, 18.16), (41.9, 20.16), (52.38, 19.72), (57.85, 17.58),
    (63.43, 16.78), (68.83, 17.73), (72.7, 20.99), (47.41, 26.63), (47.51, 32.09), (47.62, 37.49),
    (47.75, 43.04), (41.28, 46.77), (44.47, 47.89), (47.77, 48.83), (51.07, 47.78), (54.01, 46.66),
    (28.06, 27.75), (31.46, 25.68), (35.62, 25.73), (39.05, 28.31), (35.45, 29.16), (31.34, 29.2),
    (55.6, 27.99), (59.1, 25.22), (63.2, 25.16), (66.52, 27.09), (63.58, 28.57), (59.58, 28.73),
    (35.71, 57.22), (40.23, 55.15), (44.75, 54.17), (47.71, 54.91), (51.04, 54.1), (55.67, 55.01),
    (60.03, 56.74), (55.91, 61.17), (51.49, 63.14), (47.93, 63.55), (44.65, 63.28), (40.16, 61.49),
    (37.58, 57.41), (44.75, 56.92), (47.77, 57.18), (51.13, 56.8), (58.19, 57.03), (51.2, 59.03),
    (47.79, 59.49), (44.71, 59.19),
], dtype=np.float64)

#: How YuNet's five points frame the whole-face crop; calibrated by bench/calibrate_crop68.py on
#: the shared 300-W photos (the detector found 2002 of 2012 labelled faces).
WHOLE_FACE_CONVENTION = CropConvention(shift_x=0.0014, shift_y=-0.0012, side=1.0231)


@dataclass(frozen=True)
class PointSet:
    """One model's points: their names and mirror relabelling, how a crop frames them, how
    their error is normalised, how to draw them, and how they give Kaggle's 15."""

    #: ``"kaggle15"`` or ``"ibug68"``: the metadata's ``points.set`` and the crop's framing name
    name: str
    names: tuple[str, ...]
    #: ``points[flip]`` relabels a mirrored face's points
    flip: tuple[int, ...]
    #: the mean layout in the crop that ``square_from_points`` fits (the tracker's re-crop)
    template: np.ndarray = field(repr=False)
    #: how the detector's five points frame a first crop (moved and scaled from their fit)
    convention: CropConvention
    #: NME divides by the distance between these two points (the outer eye corners)
    nme_pair: tuple[int, int]
    #: (K -> 15) averaging matrix, or None for the 15 themselves
    to_kaggle: np.ndarray | None = field(default=None, repr=False)
    #: name -> (indices in drawing order, closed loop?); empty: the points are drawn as dots
    contours: dict[str, tuple[tuple[int, ...], bool]] = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def five(self) -> np.ndarray:
        """The detector's five points' mean layout in this crop (``DETECTOR_POINTS`` order)."""
        fifteen = self.template if self.to_kaggle is None else self.to_kaggle @ self.template
        return fifteen[[INDEX[name] for name in DETECTOR_POINTS]]

    def square_from_points(self, points: np.ndarray, mask: np.ndarray | None = None) -> Square:
        """The crop square that puts these frame points closest to the mean layout: how the
        tracker re-cuts a face from the model's own answer."""
        return fit_square(points, self.template, mask)

    def square_from_landmarks(self, points5: np.ndarray) -> Square:
        """A face's first crop square from the detector's five points (frame pixels)."""
        return square_from_landmarks(points5, self.convention, self.five)

    def square_from_box(self, box: tuple[float, float, float, float]) -> Square:
        """A first crop square from a caller's face box: the 15-point crop the box framing
        (``model.crop.BOX_FRAMING``) gives, turned into this set's crop of the same mean face."""
        square = square_from_box(box)
        if self.to_kaggle is None:
            return square
        return fit_square(to_frame(KAGGLE_MEAN, square), self.kaggle15(self.template))

    def kaggle15(self, points: np.ndarray) -> np.ndarray:
        """(..., K, 2) points -> (..., 15, 2) Kaggle keypoints (the same array for the 15)."""
        p = np.asarray(points, dtype=np.float64)
        return p if self.to_kaggle is None else np.einsum("jk,...kd->...jd", self.to_kaggle, p)

    def mirror(self, points: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
        """Points (..., K, 2) of a ``size``-px crop as they sit in its mirror image, relabelled."""
        return mirror_points(np.asarray(points), size)

    def metadata(self) -> dict:
        """What a weights file declares about its points (``fkd.model.metadata``)."""
        return {"set": self.name, "count": self.count, "names": list(self.names), "flip": list(self.flip)}


KAGGLE15 = PointSet("kaggle15", KEYPOINTS, FLIP_PERMUTATION, KAGGLE_MEAN, CONVENTION, NME_NORM_PAIR)
IBUG68_SET = PointSet("ibug68", IBUG68, IBUG68_FLIP_PERMUTATION, WHOLE_FACE_MEAN, WHOLE_FACE_CONVENTION,
                      IBUG68_NME_PAIR, IBUG68_TO_15, IBUG68_CONTOURS)
#: every point set this fkd can serve, by point count (what ``--points`` names)
POINT_SETS: dict[int, PointSet] = {15: KAGGLE15, 68: IBUG68_SET}


def point_set(count: int) -> PointSet:
    """The point set of ``count`` points (15 or 68)."""
    if count not in POINT_SETS:
        raise ValueError(f"fkd serves 15 or 68 points, not {count}")
    return POINT_SETS[count]


def points_of(meta: dict) -> PointSet:
    """The point set a weights file's metadata declares: by its ``keypoints`` names, which
    every fkd weights file has (files from before the 68 carry the 15's and nothing else)."""
    names = meta.get("keypoints")
    for ps in POINT_SETS.values():
        if isinstance(names, list) and tuple(names) == ps.names:
            return ps
    raise ValueError("the metadata names points this fkd does not serve")
