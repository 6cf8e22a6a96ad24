"""Head pose from the 15 keypoints: a weighted fit of a 3D face to them through a pinhole camera.

The camera is the one MediaPipe assumes (principal point at the frame's centre, focal length from
a 63 degree vertical field of view) so that the angles compare with its; ``fov`` changes it. The
3D face (face3d.json, made by bench/fit_face3d.py) is fkd's own 15 points at a real head's size,
so positions come out in centimetres and the angles carry no constant offset from a generic face.

Angles are in image terms, relative to the camera's axes, as MediaPipe's matrix decomposes in
../shared/models/mediapipe/README.md: yaw > 0 when the nose turns toward the image's right edge,
pitch > 0 when it turns up, roll > 0 when the face turns clockwise in the image, and (0, 0, 0) an
upright face looking along the camera's axis.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from fkd.model.schema import INDEX, NUM_KEYPOINTS
from fkd.realtime.defaults import FOV

DEFAULT_FOV = FOV  # the vertical field of view, in degrees (its home and why: realtime/defaults.py)

#: OpenCV's camera frame (x right, y down, z away) from the head frame's camera-like axes (y up, z toward the viewer)
_FLIP_YZ = np.diag([1.0, -1.0, -1.0])
_MIRROR = np.diag([-1.0, 1.0, 1.0])
#: a fit whose points miss by more than this fraction of the eye-to-mouth distance (RMS) is not trusted
_MAX_MISS = 0.25
#: a result turned further than this (degrees) from a frontal face is taken for a flipped fit and refitted
_MAX_TURN = 75.0
#: the fit stops once a step turns the head by less than this (radians, about 0.0006 degrees) and moves it by
#: less than ``_STOP_SHIFT`` (cm). The fit converges linearly (a near-flat face leaves yaw and sideways shift
#: nearly interchangeable), each step about a third of the one before at worst, so what is left is under half
#: the last step: far below the 0.01 degrees the records keep. A tolerance in pixels would not do: a turn
#: along that near-degenerate direction barely moves the points.
_STOP_TURN = 1e-5
_STOP_SHIFT = 1e-4


def _load_face() -> tuple[np.ndarray, np.ndarray]:
    data = json.loads(Path(__file__).with_name("face3d.json").read_text())
    points = np.array([data["points"][name] for name in INDEX], np.float64)
    weights = np.array([data["weights"][name] for name in INDEX], np.float64)
    return points, weights


#: fkd's 15 points on a real-sized neutral head, in cm, in Kaggle order. Head frame: x toward the
#: subject's left (the image's right on a face looking at the camera), y up, z out of the face
#: through the nose; the origin is the head's centre, where ``Pose.position`` is reported.
FACE_3D, FIT_WEIGHTS = _load_face()


def camera_matrix(width: int, height: int, fov: float = DEFAULT_FOV) -> np.ndarray:
    """The pinhole camera fkd assumes: principal point at the frame's centre, f from the vertical field of view."""
    if not 0.0 < fov < 180.0:
        raise ValueError(f"the field of view must be between 0 and 180 degrees, not {fov}")
    f = (height / 2.0) / math.tan(math.radians(fov) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


@lru_cache(maxsize=64)
def shared_camera_matrix(width: int, height: int, fov: float = DEFAULT_FOV) -> np.ndarray:
    """``camera_matrix``, made once per frame size and field of view and shared (read-only) by every face after.

    A live stream asks for the same camera for every face of every frame; building it each time
    cost as much as a step of the fit. It is read-only so that no caller can change it for the rest.
    """
    camera = camera_matrix(width, height, fov)
    camera.flags.writeable = False
    return camera


def angles_of(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head-to-OpenCV-camera rotation, in image terms (MediaPipe's decomposition)."""
    # into MediaPipe's camera frame (y up, z toward the viewer), where the README decomposes: _FLIP_YZ @ rotation,
    # that is rows 1 and 2 negated, written out on Python floats (a matmul and NumPy indexing cost more)
    (_, _, r02), (r10, r11, r12), (_, _, r22) = np.asarray(rotation, np.float64).tolist()
    yaw = math.degrees(math.atan2(r02, -r22))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -r12))))
    roll = math.degrees(math.atan2(r10, -r11))
    return yaw, pitch, roll


def rotation_of(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The head-to-OpenCV-camera rotation with these angles (degrees): the inverse of ``angles_of``."""
    a, b, c = (math.radians(v) for v in (yaw, -pitch, -roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return np.asarray(_FLIP_YZ @ ry @ rx @ rz)


@dataclass(frozen=True)
class Pose:
    """A head's pose: angles in degrees (image terms), its centre in cm in OpenCV's camera frame.

    ``rotation`` takes head-frame vectors (see ``FACE_3D``) into OpenCV's camera frame, and
    ``position`` is where the head frame's origin (the head's centre) is, so a 3D face point X
    is at ``rotation @ X + position``. ``error`` is the fit's RMS miss in pixels (0 for a pose
    that was not fitted).
    """

    yaw: float
    pitch: float
    roll: float
    position: tuple[float, float, float]
    rotation: np.ndarray = field(repr=False, compare=False)
    error: float = field(default=0.0, compare=False)

    @classmethod
    def from_rotation(cls, rotation: np.ndarray, position: np.ndarray, error: float = 0.0) -> Pose:
        yaw, pitch, roll = angles_of(rotation)
        x, y, z = np.asarray(position, np.float64).reshape(3).tolist()
        return cls(yaw, pitch, roll, (x, y, z), np.array(rotation, np.float64), error)

    @property
    def rvec(self) -> np.ndarray:
        """The rotation as OpenCV's Rodrigues vector (for cv2.projectPoints and cv2.drawFrameAxes)."""
        return cv2.Rodrigues(self.rotation)[0].reshape(3)

    @property
    def tvec(self) -> np.ndarray:
        return np.array(self.position, np.float64)

    def mirrored(self) -> Pose:
        """The pose as a left-right mirrored view shows it: yaw, roll and x change sign, pitch does not."""
        x, y, z = self.position
        return Pose(-self.yaw, self.pitch, -self.roll, (-x, y, z), _MIRROR @ self.rotation @ _MIRROR, self.error)

    @property
    def finite(self) -> bool:
        """Whether the fit gave numbers: degenerate keypoints (all on one spot) give NaN, which no
        record, overlay or VMC message can carry."""
        return all(math.isfinite(v) for v in (self.yaw, self.pitch, self.roll, *self.position))

    def record(self) -> dict[str, float]:
        """The record's ``"pose"`` field: degrees to 0.01."""
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2)}


def project(pose: Pose, points3d: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Head-frame points (N, 3) in cm to image pixels (N, 2) under ``pose``."""
    cam = np.asarray(points3d, np.float64) @ pose.rotation.T + np.asarray(pose.position)
    uv = cam @ camera.T
    return np.asarray(uv[:, :2] / uv[:, 2:3])


def _turn_basis() -> tuple[np.ndarray, np.ndarray]:
    """Constants that give, for each turned face point P, the rows of the fit's Jacobian before projecting.

    For a point P = R X (turned, not yet moved) at C = P + t, a small turn w of the head about the
    camera's axes (R <- exp([w]x) R) and a shift dt move it by w x P + dt; along a direction g its
    move is w . (P x g) + dt . g. Returned: (A, b) with ``P @ A + b``, reshaped (15, 3, 6), holding
    (P x e_k, e_k) for k = x, y, z, the turn's and the shift's derivatives along each camera axis.
    """
    axes = np.eye(3)
    a = np.zeros((3, 3, 6))
    b = np.zeros((3, 6))
    for k in range(3):
        for i in range(3):
            a[i, k, :3] = np.cross(axes[i], axes[k])  # P x e_k, linear in P: the sum of P_i (e_i x e_k)
        b[k, 3 + k] = 1.0
    return a.reshape(3, 18), b.reshape(18)


_TURN_A, _TURN_B = _turn_basis()


_HEIGHT_POINTS = [INDEX["left_eye_center"], INDEX["right_eye_center"], INDEX["mouth_left_corner"],
                  INDEX["mouth_right_corner"]]


def _face_height(points: np.ndarray) -> float:
    """The distance from the eyes' midpoint to the mouth corners' midpoint (on Python floats: four points)."""
    (lx, ly), (rx, ry), (mlx, mly), (mrx, mry) = points[_HEIGHT_POINTS, :2].tolist()
    return max(math.hypot((mlx + mrx) / 2 - (lx + rx) / 2, (mly + mry) / 2 - (ly + ry) / 2), 1e-6)


#: the 3D face's own eye-to-mouth height, in cm, as the image would show it (y down): the upright start's yardstick
_MODEL_HEIGHT = _face_height(FACE_3D[:, :2] * np.array([1.0, -1.0]))


class PoseFitter:
    """Fits ``FACE_3D`` to a face's 15 points (Gauss-Newton on the weighted reprojection error).

    The weights trust the points that a face's expression moves least (eye corners, nose tip)
    most, so a smile or an open mouth does not turn the head. Each fit starts from ``guess`` (the
    same face's previous pose, so that the angles stay continuous from frame to frame) or else
    from an upright face at the size and roll the points show. A fit that ends turned past 75
    degrees, behind the camera or missing its points is taken for the fit flipping to the mirror
    solution a near-flat face allows, and is redone from the upright start; the better of the two
    is kept.
    """

    def __init__(self, fov: float = DEFAULT_FOV, iterations: int = 12) -> None:
        if not 0.0 < fov < 180.0:
            raise ValueError(f"the field of view must be between 0 and 180 degrees, not {fov}")
        self.fov = fov
        self.iterations = iterations
        self._sqrt_w2 = np.sqrt(FIT_WEIGHTS)[:, None]  # (15, 1): each point's weight on both its pixels

    def fit(self, points: np.ndarray, width: int, height: int, guess: Pose | None = None) -> Pose:
        """The pose of a face whose keypoints (15, 2) in pixels, Kaggle order, are in a ``width`` x ``height`` image."""
        points = np.asarray(points, np.float64).reshape(NUM_KEYPOINTS, 2)
        camera = shared_camera_matrix(width, height, self.fov)
        start = guess if guess is not None else self.upright(points, camera)
        pose = self._refine(points, camera, start)
        if guess is not None and not self._sane(pose, points):
            fresh = self._refine(points, camera, self.upright(points, camera))
            if self._sane(fresh, points) or fresh.error < pose.error:
                pose = fresh
        return pose

    def upright(self, points: np.ndarray, camera: np.ndarray) -> Pose:
        """A starting pose: no yaw or pitch, the roll of the eye line, at the depth the face's size gives."""
        dx, dy = points[INDEX["left_eye_center"]] - points[INDEX["right_eye_center"]]
        roll = math.degrees(math.atan2(dy, dx))  # image y is down: a clockwise turn raises the eye line's slope
        rotation = rotation_of(0.0, 0.0, roll)
        depth = camera[0, 0] * _MODEL_HEIGHT / _face_height(points)
        nose = INDEX["nose_tip"]
        ray = np.linalg.solve(camera, np.array([*points[nose], 1.0]))
        position = ray * (depth / ray[2]) - rotation @ FACE_3D[nose]
        return Pose.from_rotation(rotation, position)

    def _refine(self, points: np.ndarray, camera: np.ndarray, start: Pose) -> Pose:
        """Gauss-Newton from ``start``: each step turns the head about its centre and shifts it, until the steps vanish.

        The projection and its Jacobian are written out for the 15 points (cv2.projectPoints and
        lstsq cost more in their calls than in their arithmetic here), and the step comes from the
        normal equations (6 x 6). The turn is taken about the camera's axes (R <- exp([w]x) R), so
        its Jacobian needs no Rodrigues derivative. fkd's camera (``fit``'s) has square pixels and
        no skew, so a miss in pixels is f times the miss on the plane z = 1: the fit works there
        (the same least squares, scaled by f^2). The last projection, at the pose returned, is the
        one that gives the error; none is made twice.
        """
        focal = float(camera[0, 0])
        target = (points - camera[:2, 2]) / focal
        rotation = np.array(start.rotation, np.float64)
        position = np.array(start.position, np.float64)
        system = np.empty((NUM_KEYPOINTS, 2, 7))  # the weighted Jacobian beside the weighted miss
        miss = target
        converged = False
        for step_count in range(self.iterations + 1):
            turned = FACE_3D @ rotation.T
            at = turned + position
            inv_z = 1.0 / at[:, 2:3]
            normalised = at[:, :2] * inv_z
            miss = normalised - target
            if converged or step_count == self.iterations:
                break
            # a move d of the point at (x, y, z) moves its image by (d_x - x/z d_z, d_y - y/z d_z) / z
            basis = (turned @ _TURN_A + _TURN_B).reshape(NUM_KEYPOINTS, 3, 6)
            along = basis[:, :2] - normalised[:, :, None] * basis[:, 2:3]
            np.multiply(along, (self._sqrt_w2 * inv_z)[:, :, None], out=system[:, :, :6])
            np.multiply(miss, self._sqrt_w2, out=system[:, :, 6])
            flat = system.reshape(-1, 7)
            normal = flat.T @ flat  # [[J'J, J'r], [r'J, r'r]] in one product
            # cv2's Cholesky: a third of np.linalg.solve's cost on a 6 x 6. It fails only on a degenerate
            # face (all points on one ray), where the pose reached is kept.
            solved, back = cv2.solve(normal[:6, :6], normal[:6, 6:], flags=cv2.DECOMP_CHOLESKY)
            if not solved:
                break
            step = -back.reshape(6)  # J'J step = -J'r
            turn, shift = step[:3], step[3:]
            rotation = cv2.Rodrigues(turn)[0] @ rotation
            position = position + shift
            t0, t1, t2 = turn.tolist()
            s0, s1, s2 = shift.tolist()
            converged = max(abs(t0), abs(t1), abs(t2)) < _STOP_TURN and max(abs(s0), abs(s1), abs(s2)) < _STOP_SHIFT
        error = focal * math.sqrt(float(np.einsum("ij,ij->", miss, miss)) / NUM_KEYPOINTS)
        return Pose.from_rotation(rotation, position, error)

    def _sane(self, pose: Pose, points: np.ndarray) -> bool:
        turned = abs(pose.yaw) > _MAX_TURN or abs(pose.pitch) > _MAX_TURN
        return not turned and pose.position[2] > 0 and pose.error < _MAX_MISS * _face_height(points)


def axes_in_image(pose: Pose, width: int, height: int, fov: float = DEFAULT_FOV,
                  length_cm: float = 5.0) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """The nose tip and the image ends of the head's three axes drawn from it, ``length_cm`` long, in pixels.

    The axes are the head's x (toward the subject's left), y (up) and z (out of the face), in that
    order, so an overlay can colour them as the usual red, green and blue.
    """
    nose = FACE_3D[INDEX["nose_tip"]]
    ends = np.vstack([nose, nose + np.eye(3) * length_cm])
    uv = project(pose, ends, camera_matrix(width, height, fov))
    origin = (float(uv[0, 0]), float(uv[0, 1]))
    return origin, [(float(u), float(v)) for u, v in uv[1:]]
