"""The 15 Kaggle keypoints: names, order, flip partners and the iBUG-68 mapping.

Every other module takes these facts from here, so a model trained by ``fkd.train`` and
run by ``fkd.realtime`` always agrees on what point 7 is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Kaggle order: the 30 CSV columns are ``<name>_x, <name>_y`` in this order.
KEYPOINTS: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)
NUM_KEYPOINTS = len(KEYPOINTS)
INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINTS)}
#: The face detector's five points (YuNet's order: image left to right for the eyes and the
#: mouth corners, so the subject's right comes first), in Kaggle's names.
DETECTOR_POINTS: tuple[str, ...] = ("right_eye_center", "left_eye_center", "nose_tip", "mouth_right_corner",
                                    "mouth_left_corner")

#: The 30 coordinate columns of training.csv, in file order.
CSV_COLUMNS: tuple[str, ...] = tuple(f"{n}_{axis}" for n in KEYPOINTS for axis in ("x", "y"))


def _flip_permutation() -> tuple[int, ...]:
    """A mirrored face's left_* point is the original's right_* point and vice versa."""
    perm = []
    for name in KEYPOINTS:
        if name.startswith("left_"):
            partner = "right_" + name[len("left_"):]
        elif name.startswith("right_"):
            partner = "left_" + name[len("right_"):]
        elif name.startswith("mouth_left_"):
            partner = name.replace("mouth_left_", "mouth_right_")
        elif name.startswith("mouth_right_"):
            partner = name.replace("mouth_right_", "mouth_left_")
        else:
            partner = name
        perm.append(INDEX[partner])
    return tuple(perm)


#: ``points[FLIP_PERMUTATION]`` relabels a horizontally flipped face.
FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation()
#: The same fact as (left, right) index pairs, for code that wants pairs.
FLIP_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, j) for i, j in enumerate(FLIP_PERMUTATION) if i < j
)


def mirror_points(points: Any, size: int) -> Any:
    """Points (..., K, 2) of a ``size``-pixel crop, as they sit in its left-right mirror image:
    Kaggle's 15 keypoints or iBUG's 68 points (K says which).

    x becomes ``size - 1 - x`` (pixel centres are integers) and left/right partners swap, so the
    result is in the same order again. Mirroring twice gives the points back. A torch tensor
    stays a tensor on its device (distillation's teacher), anything else becomes float64 numpy.
    """
    p = points.clone() if hasattr(points, "clone") else np.array(points, dtype=np.float64, copy=True)
    p[..., 0] = (size - 1) - p[..., 0]
    return p[..., list(flip_permutation(p.shape[-2])), :]


def flip_permutation(count: int) -> tuple[int, ...]:
    """How a mirror relabels ``count`` points (15 or 68)."""
    if count == 68:
        return IBUG68_FLIP_PERMUTATION
    if count == NUM_KEYPOINTS:
        return FLIP_PERMUTATION
    raise ValueError(f"no mirror relabelling for {count} points (fkd knows 15 and 68)")


#: NME divides by the distance between these two points (the outer eye corners).
NME_NORM_PAIR: tuple[int, int] = (INDEX["left_eye_outer_corner"], INDEX["right_eye_outer_corner"])

# 1-based iBUG indices per Kaggle point, as in ../shared/README.md; averaged where several.
_IBUG_1BASED: dict[str, tuple[int, ...]] = {
    "left_eye_center": (43, 44, 45, 46, 47, 48),
    "right_eye_center": (37, 38, 39, 40, 41, 42),
    "left_eye_inner_corner": (43,),
    "left_eye_outer_corner": (46,),
    "right_eye_inner_corner": (40,),
    "right_eye_outer_corner": (37,),
    "left_eyebrow_inner_end": (23,),
    "left_eyebrow_outer_end": (27,),
    "right_eyebrow_inner_end": (22,),
    "right_eyebrow_outer_end": (18,),
    "nose_tip": (31,),
    "mouth_left_corner": (55,),
    "mouth_right_corner": (49,),
    "mouth_center_top_lip": (52,),
    "mouth_center_bottom_lip": (58,),
}


def _ibug_matrix() -> np.ndarray:
    """A (15, 68) averaging matrix, so the mapping is one matrix product."""
    m = np.zeros((NUM_KEYPOINTS, 68), dtype=np.float64)
    for name, idx in _IBUG_1BASED.items():
        for i in idx:
            m[INDEX[name], i - 1] = 1.0 / len(idx)
    return m


IBUG68_TO_15: np.ndarray = _ibug_matrix()


def ibug68_to_kaggle15(points68: np.ndarray) -> np.ndarray:
    """Map (68, 2) iBUG points onto the (15, 2) Kaggle keypoints."""
    points68 = np.asarray(points68, dtype=np.float64)
    if points68.shape != (68, 2):
        raise ValueError(f"expected 68 points of (x, y), got shape {points68.shape}")
    return IBUG68_TO_15 @ points68


def _ibug68_flip_permutation() -> tuple[int, ...]:
    """iBUG's 68 points as relabelled in the mirror image, region by region (0-based):
    each left-right pair is listed once; points on the face's midline map to themselves."""
    pairs = [(i, 16 - i) for i in range(8)]  # jaw line, ear to ear
    pairs += [(17 + i, 26 - i) for i in range(5)]  # eyebrows, outer end to outer end
    pairs += [(31, 35), (32, 34)]  # nostrils (27-30, the bridge, and 33 are central)
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eye contours
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip contour
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lip contour
    perm = list(range(68))
    for i, j in pairs:
        perm[i], perm[j] = j, i
    return tuple(perm)


#: ``points68[IBUG68_FLIP_PERMUTATION]`` relabels a horizontally flipped face's 68 points.
IBUG68_FLIP_PERMUTATION: tuple[int, ...] = _ibug68_flip_permutation()


#: Mean keypoint positions in Kaggle's 96x96 training crops (x, y), from ../shared/README.md.
#: The crop convention is calibrated so that fkd's crops frame faces this way.
KAGGLE_MEAN = np.array(
    [
        (66.4, 37.7), (30.3, 38.0), (59.2, 37.9), (73.3, 37.7), (36.7, 38.0),
        (22.4, 38.0), (56.1, 29.3), (79.5, 29.7), (39.3, 29.5), (15.9, 30.4),
        (48.4, 62.7), (63.3, 76.0), (32.9, 76.2), (48.0, 72.9), (48.6, 79.0),
    ],
    dtype=np.float64,
)


# -- the 68 iBUG 300-W points --------------------------------------------------------------
# "left" and "right" are the subject's own, as in Kaggle's names: the subject's right eye
# (iBUG 37-42) is on the image's left. Each part runs in iBUG's own order.
def _ibug68_names() -> tuple[str, ...]:
    names = [f"jaw_{i:02d}" for i in range(17)]  # 0-16: from the subject's right ear to the left
    names += [f"right_brow_{i}" for i in range(5)]  # 17-21: outer end to inner end
    names += [f"left_brow_{i}" for i in range(5)]  # 22-26: inner end to outer end
    names += [f"nose_bridge_{i}" for i in range(4)]  # 27-30: top to tip (30 is Kaggle's nose_tip)
    names += [f"nose_base_{i}" for i in range(5)]  # 31-35: right nostril wing to left
    names += [f"right_eye_{i}" for i in range(6)]  # 36-41: outer corner, upper lid, inner corner, lower lid
    names += [f"left_eye_{i}" for i in range(6)]  # 42-47: inner corner, upper lid, outer corner, lower lid
    names += [f"outer_lip_{i:02d}" for i in range(12)]  # 48-59: right corner, upper lip, left corner, lower
    names += [f"inner_lip_{i}" for i in range(8)]  # 60-67: right corner, upper, left corner, lower
    return tuple(names)


#: The 68 iBUG points' names, index 0 to 67 (the 1-based .pts numbering minus one).
IBUG68: tuple[str, ...] = _ibug68_names()


def _ibug68_contours() -> dict[str, tuple[tuple[int, ...], bool]]:
    """Each part as (indices in drawing order, closed loop?): what an overlay joins with lines."""
    return {
        "jaw": (tuple(range(0, 17)), False),
        "right_brow": (tuple(range(17, 22)), False),
        "left_brow": (tuple(range(22, 27)), False),
        "nose_bridge": (tuple(range(27, 31)), False),
        "nose_base": (tuple(range(31, 36)), False),
        "right_eye": (tuple(range(36, 42)), True),
        "left_eye": (tuple(range(42, 48)), True),
        "outer_lips": (tuple(range(48, 60)), True),
        "inner_lips": (tuple(range(60, 68)), True),
    }


#: The contours an overlay draws for the 68 points: name -> (indices in order, closed loop?).
IBUG68_CONTOURS: dict[str, tuple[tuple[int, ...], bool]] = _ibug68_contours()
#: 68-point NME divides by the outer eye corners' distance (1-based 37 and 46), as 300-W's papers do.
IBUG68_NME_PAIR: tuple[int, int] = (36, 45)
