"""Expressions from the 15 keypoints: how far the mouth opens, the face smiles and the brows rise, each 0..1.

Each expression is measured on the face itself, not in the image: every keypoint's ray is met with
the plane through its place on the posed 3D face (``frontal_points``), which undoes the head's
turn and brings the face to the 3D face's real size. The measures are then centimetres on a
standard head, the same for a small or a big face, turned or not:

- ``mouth_open``: the gap between the lip centres (outer edges) beyond the neutral gap; 1 at 2 cm more.
- ``smile``: the mouth's widening plus its corners' rise above the lips' centre line, beyond
  neutral; 1 at 2 cm more in all.
- ``brow_raise``: the inner brow ends' height above the eye centres beyond neutral; 1 at 0.8 cm more.

The neutral values differ from person to person (lips' thickness, brows' height), so ``NeutralFace``
learns each face's own: it starts from the 3D face's values and follows a running 10th percentile
of each measure (a stochastic quantile tracker: each frame moves it by 1 % of the measure's span
toward the frame's value, nine times slower upward than downward), so a face at rest for a few
seconds sets its own zero and a held smile does not become the new neutral. Photos have no history
and use the 3D face's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fkd.model.schema import INDEX, NUM_KEYPOINTS
from fkd.realtime.state.pose import DEFAULT_FOV, FACE_3D, Pose, shared_camera_matrix

EXPRESSIONS = ("mouth_open", "smile", "brow_raise")
#: the measure's change (cm on the standard head) that reads 1
SPANS = {"mouth_open": 2.0, "smile": 2.0, "brow_raise": 0.8}
#: the quantile NeutralFace follows, and each frame's step as a fraction of the span
NEUTRAL_QUANTILE = 0.1
NEUTRAL_STEP = 0.01

_LIP_TOP, _LIP_BOTTOM = INDEX["mouth_center_top_lip"], INDEX["mouth_center_bottom_lip"]
_MOUTH_LEFT, _MOUTH_RIGHT = INDEX["mouth_left_corner"], INDEX["mouth_right_corner"]
_EYES = [INDEX["left_eye_center"], INDEX["right_eye_center"]]
_INNER_BROWS = [INDEX["left_eyebrow_inner_end"], INDEX["right_eyebrow_inner_end"]]


def frontal_points(points: np.ndarray, pose: Pose, camera: np.ndarray) -> np.ndarray:
    """The keypoints (15, 2) in pixels taken onto the posed 3D face: (15, 3) head-frame cm.

    Each ray through a keypoint meets the plane through that point's place on the 3D face that
    faces the way the face does, so what is left is how the face differs from the neutral 3D face.
    """
    points = np.asarray(points, np.float64).reshape(NUM_KEYPOINTS, 2)
    rotation = pose.rotation
    position = np.asarray(pose.position, np.float64)
    to_ray, ray_origin = _unprojection(camera)
    rays = points @ to_ray + ray_origin  # each keypoint's ray, as its point at z = 1
    normal = rotation[:, 2]
    # a 3D face point X sits at R X + t, so its plane's distance along the normal R e_z is X_z + t . normal
    offsets = FACE_3D[:, 2] + float(position @ normal)
    facing = rays @ normal
    facing = np.where(np.abs(facing) < 1e-9, 1e-9, facing)  # a ray along the face's plane: only at 90 degrees
    on_face = rays * (offsets / facing)[:, None]
    return np.asarray((on_face - position) @ rotation)


def _unprojection(camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, o) with pixels (N, 2) @ M + o = their rays' points at z = 1: K⁻¹ (u, v, 1) for an upper-triangular K.

    K⁻¹ written out, rather than solved for every frame: np.linalg.solve's call cost more than
    the rest of the frontalisation's arithmetic.
    """
    fx, skew, cx = camera[0].tolist()
    fy, cy = camera[1, 1:].tolist()
    to_ray = np.array([[1.0 / fx, 0.0, 0.0], [-skew / (fx * fy), 1.0 / fy, 0.0]])
    origin = np.array([(skew * cy - cx * fy) / (fx * fy), -cy / fy, 1.0])
    return to_ray, origin


def measures(face: np.ndarray) -> dict[str, float]:
    """The raw measures (cm on the standard head) behind each expression, from head-frame points (15, 3).

    Arithmetic on Python floats: a handful of numbers, where NumPy's calls would cost more than the sums.
    """
    x, y = face[:, 0].tolist(), face[:, 1].tolist()
    corners_y = (y[_MOUTH_LEFT] + y[_MOUTH_RIGHT]) / 2
    brows = (y[_INNER_BROWS[0]] + y[_INNER_BROWS[1]]) / 2
    eyes = (y[_EYES[0]] + y[_EYES[1]]) / 2
    return {
        "mouth_open": y[_LIP_TOP] - y[_LIP_BOTTOM],
        "smile": (x[_MOUTH_LEFT] - x[_MOUTH_RIGHT]) + corners_y - (y[_LIP_TOP] + y[_LIP_BOTTOM]) / 2,
        "brow_raise": brows - eyes,
    }


#: the measures of the neutral 3D face: every face's zero until NeutralFace has learnt its own
NEUTRAL = measures(FACE_3D)


@dataclass
class NeutralFace:
    """One person's neutral measures, learnt as a running low quantile (see the module's docstring)."""

    values: dict[str, float] = field(default_factory=lambda: dict(NEUTRAL))
    frames: int = 0

    def update(self, raw: dict[str, float]) -> None:
        for name, value in raw.items():
            step = NEUTRAL_STEP * SPANS[name]
            below = value < self.values[name]
            self.values[name] += step * (NEUTRAL_QUANTILE - 1.0) if below else step * NEUTRAL_QUANTILE
            if below and self.values[name] < value:  # never step past the frame's own value
                self.values[name] = value
        self.frames += 1


def expressions_from(raw: dict[str, float], neutral: dict[str, float] | None = None) -> dict[str, float]:
    """Raw measures to 0..1 expressions against a neutral face (the 3D face's when ``None``)."""
    zero = NEUTRAL if neutral is None else neutral
    return {name: _clip01((raw[name] - zero[name]) / SPANS[name]) for name in EXPRESSIONS}


def _clip01(value: float) -> float:
    """``value`` held to 0..1 (NaN stays NaN, as with np.clip), in Python: np.clip on one float costs microseconds."""
    return min(max(float(value), 0.0), 1.0)


def expression_of(points: np.ndarray, pose: Pose, width: int, height: int, neutral: NeutralFace | None = None,
                  fov: float = DEFAULT_FOV) -> dict[str, float]:
    """The expressions (each 0..1) of a face whose keypoints are ``points`` and whose fitted pose is ``pose``.

    ``neutral`` is the person's learnt neutral face (``None``: the 3D face's); it is read, not updated.
    """
    raw = measures(frontal_points(points, pose, shared_camera_matrix(width, height, fov)))
    return expressions_from(raw, None if neutral is None else neutral.values)


def record(expression: dict[str, float]) -> dict[str, float]:
    """The record's ``"expression"`` field: each value to 0.001."""
    return {name: round(value, 3) for name, value in expression.items()}
