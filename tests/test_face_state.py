"""Head pose and expressions (realtime/state) on real photos and frames: turned, mirrored, open-mouthed, tracked."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import fkd
from fkd.model.schema import INDEX, ibug68_to_kaggle15
from fkd.realtime.state.expression import EXPRESSIONS, expression_of
from fkd.realtime.state.faces import FaceStates, face_state
from fkd.realtime.state.pose import DEFAULT_FOV, Pose, PoseFitter, angles_of, axes_in_image, camera_matrix, rotation_of

PHOTO = "helen_train/100032540_1"  # a frontal 300-W face


def _turned(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -degrees, 1.0)  # cv2 turns counter-clockwise
    return cv2.warpAffine(image, m, (w, h))


def _pts(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    rows = lines[lines.index("{") + 1:lines.index("}")]
    return np.array([[float(v) for v in row.split()] for row in rows]) - 1.0


@pytest.fixture(scope="module")
def marker() -> fkd.Landmarker:
    return fkd.Landmarker()


def _one_face(marker: fkd.Landmarker, image: np.ndarray) -> np.ndarray:
    faces = marker.landmarks(image)
    centre = np.array(image.shape[1::-1]) / 2
    return min(faces, key=lambda f: float(np.linalg.norm(f.keypoints.mean(axis=0) - centre))).keypoints


def test_angles_and_rotations_agree_both_ways() -> None:
    for yaw, pitch, roll in [(0, 0, 0), (20, -10, 5), (-35, 25, -40), (10, 5, 170)]:
        assert np.allclose(angles_of(rotation_of(yaw, pitch, roll)), (yaw, pitch, roll), atol=1e-9)
    # an upright face looking down the axis: head x is image right, head y (up) is image up
    assert np.allclose(rotation_of(0, 0, 0), np.diag([1.0, -1.0, -1.0]))


def test_camera_matrix_takes_the_vertical_field_of_view() -> None:
    k = camera_matrix(640, 480, DEFAULT_FOV)
    assert k[1, 1] == pytest.approx(240 / np.tan(np.radians(31.5)))
    assert (k[0, 2], k[1, 2]) == (319.5, 239.5)


def test_a_face_projected_at_a_known_pose_is_fitted_back() -> None:
    from fkd.realtime.state.pose import FACE_3D, project
    for yaw, pitch, roll in [(0, 0, 0), (25, -10, 8), (-30, 15, -20)]:
        truth = Pose.from_rotation(rotation_of(yaw, pitch, roll), np.array([3.0, -2.0, 60.0]))
        points = project(truth, FACE_3D, camera_matrix(640, 480))
        pose = PoseFitter().fit(points, 640, 480)
        assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((yaw, pitch, roll), abs=0.05)
        assert pose.position == pytest.approx((3.0, -2.0, 60.0), abs=0.05)


def test_turning_a_photo_turns_the_roll_by_as_much(shared: Path, marker: fkd.Landmarker) -> None:
    gray = cv2.imread(str(shared / "data" / "300w" / f"{PHOTO}.jpg"), cv2.IMREAD_GRAYSCALE)
    h, w = gray.shape
    upright = face_state(_one_face(marker, gray), w, h)[0]
    for degrees in (15.0, -15.0, 30.0):
        pose = face_state(_one_face(marker, _turned(gray, degrees)), w, h)[0]
        assert pose.roll - upright.roll == pytest.approx(degrees, abs=2.0), degrees
        # the whole change is a turn about the camera's axis (yaw and pitch mix when a pitched face rolls)
        change = cv2.Rodrigues(pose.rotation @ upright.rotation.T)[0].ravel()
        assert np.degrees(np.linalg.norm(change)) == pytest.approx(abs(degrees), abs=3.0)
        assert abs(change[2]) / np.linalg.norm(change) > 0.95


def test_a_mirrored_photo_mirrors_yaw_and_roll_but_not_pitch(shared: Path, marker: fkd.Landmarker) -> None:
    gray = cv2.imread(str(shared / "data" / "300w" / f"{PHOTO}.jpg"), cv2.IMREAD_GRAYSCALE)
    h, w = gray.shape
    turned = _turned(gray, 12.0)  # a visible roll, so that its sign means something
    pose = face_state(_one_face(marker, turned), w, h)[0]
    seen = face_state(_one_face(marker, cv2.flip(turned, 1)), w, h)[0]
    assert pose.roll > 8 and seen.roll < -8
    assert seen.roll == pytest.approx(-pose.roll, abs=1.5)
    assert seen.yaw == pytest.approx(-pose.yaw, abs=3.0)
    assert seen.pitch == pytest.approx(pose.pitch, abs=3.0)
    mirrored = pose.mirrored()
    assert (mirrored.yaw, mirrored.pitch, mirrored.roll) == (-pose.yaw, pose.pitch, -pose.roll)
    assert mirrored.position[0] == -pose.position[0]
    assert np.allclose(angles_of(mirrored.rotation), (-pose.yaw, pose.pitch, -pose.roll))


def test_an_open_mouth_reads_open_and_a_closed_one_does_not(shared: Path) -> None:
    """The 300-W faces whose lips (marked by hand) are furthest apart and closest, by the face's size."""
    faces = []
    for pts in sorted((shared / "data" / "300w" / "helen_train").glob("*.pts"))[:300]:
        points = ibug68_to_kaggle15(_pts(pts))
        size = np.linalg.norm(points[INDEX["left_eye_outer_corner"]] - points[INDEX["right_eye_outer_corner"]])
        gap = points[INDEX["mouth_center_bottom_lip"], 1] - points[INDEX["mouth_center_top_lip"], 1]
        faces.append((gap / size, pts, points))
    faces.sort(key=lambda f: f[0])
    expressions = {}
    for label, (_, pts, points) in (("closed", faces[0]), ("open", faces[-1])):
        h, w = cv2.imread(str(pts.with_suffix(".jpg")), cv2.IMREAD_GRAYSCALE).shape
        pose = PoseFitter().fit(points, w, h)
        expressions[label] = expression_of(points, pose, w, h)
        assert set(expressions[label]) == set(EXPRESSIONS)
        assert all(0.0 <= v <= 1.0 for v in expressions[label].values())
    assert expressions["open"]["mouth_open"] > 0.4
    assert expressions["closed"]["mouth_open"] < 0.15


def test_the_same_face_bigger_or_smaller_has_the_same_expression(shared: Path) -> None:
    pts = sorted((shared / "data" / "300w" / "helen_train").glob("*.pts"))[0]
    points = ibug68_to_kaggle15(_pts(pts))
    seen = []
    for scale in (0.5, 1.0, 2.0):
        pose = PoseFitter().fit(points * scale, int(320 * scale), int(320 * scale))
        seen.append(expression_of(points * scale, pose, int(320 * scale), int(320 * scale)))
    for name in EXPRESSIONS:
        assert seen[0][name] == pytest.approx(seen[2][name], abs=0.01)


def test_a_tracked_talking_head_turns_smoothly(shared: Path, marker: fkd.Landmarker) -> None:
    capture = cv2.VideoCapture(str(shared / "video" / "talking_head_512.mp4"))
    states = FaceStates()
    poses: list[Pose] = []
    with marker.tracker(fps=25.0) as tracker:
        for _ in range(60):
            ok, frame = capture.read()
            assert ok
            faces = tracker.update(frame)
            states.forget(f.id for f in faces)
            for face in faces[:1]:
                pose, expression = states.update(face.id, face.keypoints, frame.shape[1], frame.shape[0])
                poses.append(pose)
                assert all(0.0 <= v <= 1.0 for v in expression.values())
    capture.release()
    assert len(poses) >= 55
    angles = np.array([(p.yaw, p.pitch, p.roll) for p in poses])
    assert np.abs(np.diff(angles, axis=0)).max() < 5.0  # no flips or wraps between frames
    assert np.abs(angles).max() < 40.0
    assert all(20.0 < p.position[2] < 120.0 for p in poses)  # a face-cropped talking head, tens of cm away
    origin, ends = axes_in_image(poses[-1], 512, 512, DEFAULT_FOV, 5.0)
    assert 0 <= origin[0] < 512 and 0 <= origin[1] < 512
    assert ends[1][1] < origin[1]  # the head's y axis points up the image
    assert poses[-1].record() == {k: round(v, 2) for k, v in zip(("yaw", "pitch", "roll"), angles[-1])}


# -- with 68 points: eyes, blinks and the inner lips (labelled 300-W faces, so the test is of the measure) -------
def _labelled(shared: Path, name: str) -> tuple[np.ndarray, int, int]:
    from fkd.train.data.pts import read_pts

    points68 = read_pts(shared / "data/300w" / f"{name}.pts")
    h, w = cv2.imread(str(shared / "data/300w" / f"{name}.jpg")).shape[:2]
    return points68, w, h


def _state68(points68: np.ndarray, w: int, h: int) -> dict[str, float]:
    return face_state(ibug68_to_kaggle15(points68), w, h, points68=points68)[1]


def test_closed_eyes_read_shut_and_blink_and_open_eyes_do_not(shared: Path) -> None:
    for name in ("afw/2437602091_1", "helen_train/106242334_1"):  # eyes closed (looked at)
        state = _state68(*_labelled(shared, name))
        assert state["eye_open_left"] < 0.3 and state["eye_open_right"] < 0.3 and state["blink"] == 1.0, name
    state = _state68(*_labelled(shared, "helen_train/105455387_1"))  # a baby, eyes wide open
    assert state["eye_open_left"] > 0.7 and state["eye_open_right"] > 0.7 and state["blink"] == 0.0


def test_left_and_right_eyes_are_the_persons_own(shared: Path) -> None:
    """Shut one eye by moving its lower lid up to the upper one: only that eye reads shut, and in the
    mirror image the same eye is still the same person's eye, now on the other side."""
    from fkd.model.schema import IBUG68_FLIP_PERMUTATION

    points68, w, h = _labelled(shared, "helen_train/105455387_1")
    winked = points68.copy()
    winked[[47, 46]] = winked[[43, 44]]  # the subject's left eye (iBUG 43-48): lower lid onto the upper
    state = _state68(winked, w, h)
    assert state["eye_open_left"] < 0.2 < 0.7 < state["eye_open_right"] and state["blink"] == 0.0
    mirrored = winked.copy()
    mirrored[:, 0] = (w - 1) - mirrored[:, 0]
    state = _state68(mirrored[list(IBUG68_FLIP_PERMUTATION)], w, h)  # the mirror's left eye is the winked one's right
    assert state["eye_open_right"] < 0.2 < 0.7 < state["eye_open_left"]


def test_a_tracked_face_learns_its_own_open_eyes(shared: Path) -> None:
    """Narrow eyes that are open most of the time read open once the face has been watched a while."""
    points68, w, h = _labelled(shared, "helen_train/105455387_1")
    narrow = points68.copy()
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):  # lids at 45 % of their gap
        middle = (narrow[upper] + narrow[lower]) / 2
        narrow[upper] = middle + 0.45 * (narrow[upper] - middle)
        narrow[lower] = middle + 0.45 * (narrow[lower] - middle)
    states = FaceStates()
    first = states.update(0, ibug68_to_kaggle15(narrow), w, h, narrow)[1]
    for _ in range(300):
        last = states.update(0, ibug68_to_kaggle15(narrow), w, h, narrow)[1]
    assert last["eye_open_left"] > first["eye_open_left"] + 0.2 and last["eye_open_left"] > 0.9
