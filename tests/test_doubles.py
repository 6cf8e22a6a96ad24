"""One face, one track: two tracks whose keypoints coincide merge into the older; two people whose
faces overlap stay two. On real frames: crowd_walk as fkd-live reports it, and a real face's keypoints."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fkd.model.artifact import Predictor
from fkd.model.crop import Square, square_from_keypoints
from fkd.model.detect import FaceDetector
from fkd.model.schema import INDEX, KEYPOINTS
from fkd.realtime.live import LiveConfig, run_live
from fkd.realtime.sources.video import open_video
from fkd.realtime.tracking.pipeline import PhotoPipeline, live_pipeline
from fkd.realtime.tracking.tracks import Track, Tracker, same_face

pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture(scope="module")
def predictor(shipped_weights: Path) -> Predictor:
    return Predictor(Path(os.environ.get("FKD_TEST_WEIGHTS", shipped_weights)), threads=1)


@pytest.fixture(scope="module")
def crowd(predictor: Predictor, shared: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """crowd_walk's records as ``fkd-live --video`` gives them."""
    export = tmp_path_factory.mktemp("crowd") / "k.jsonl"
    pipeline = live_pipeline(predictor, live=False)
    run_live(open_video(shared / "video/crowd_walk_640x360.mp4"), pipeline, LiveConfig(export=str(export),
                                                                                    headless=True))
    return [json.loads(line) for line in export.read_text().splitlines()]


def points_of(face: dict) -> np.ndarray:
    return np.array([face["keypoints"][name] for name in KEYPOINTS])


def eyes_apart(face: dict) -> float:
    return float(np.linalg.norm(np.subtract(face["keypoints"]["left_eye_center"],
                                            face["keypoints"]["right_eye_center"])))


def closeness(a: dict, b: dict) -> float:
    """Mean keypoint distance of two reported faces, in their mean eye distance (bench/doubles.py)."""
    return float(np.linalg.norm(points_of(a) - points_of(b), axis=1).mean() / np.mean([eyes_apart(a), eyes_apart(b)]))


def test_crowd_walk_has_no_doubles(crowd: list[dict]) -> None:
    """A small face at the group's right edge (frames 68-74) was two tracks, a 10 px crop and a 17 px
    one, their keypoints 0.39-0.68 eye distances apart; the newer is merged into the older now."""
    pairs = [(r["frame"], a["id"], b["id"]) for r in crowd for a, b in itertools.combinations(r["faces"], 2)
             if closeness(a, b) < 1.0]
    assert pairs == []
    assert sum(len(r["faces"]) for r in crowd) > 500  # still found: 579 reported before, 6 of them doubles


def test_a_face_half_hidden_behind_another_stays_its_own(crowd: list[dict]) -> None:
    """Frames 5-10: a woman's face half hidden behind a boy's, their boxes overlapping. Two people,
    so two faces, each on its own face: their keypoints 1.4 eye distances apart or more."""
    for record in crowd[5:11]:
        near = [(a, b) for a, b in itertools.combinations(record["faces"], 2)
                if abs(a["box"][0] - 300) < 20 and abs(b["box"][0] - 300) < 20
                and abs(a["box"][1] - 215) < 20 and abs(b["box"][1] - 215) < 20]
        assert len(near) == 1, record["frame"]
        a, b = near[0]
        assert a["id"] != b["id"] and closeness(a, b) > 1.2


@pytest.fixture(scope="module")
def face_points(predictor: Predictor, shared: Path) -> np.ndarray:
    """A real face's keypoints, frame pixels: the talking head's first frame."""
    cap = cv2.VideoCapture(str(shared / "video/talking_head_512.mp4"))
    image = cap.read()[1]
    cap.release()
    faces = PhotoPipeline(predictor.run, FaceDetector(), threshold=0.0).process(image)
    assert len(faces) == 1
    return faces[0].keypoints.astype(np.float64)


def eye_distance(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[INDEX["left_eye_center"]] - points[INDEX["right_eye_center"]]))


@pytest.mark.parametrize(("shift", "one"), [(0.3, True), (0.6, True), (1.2, False), (2.0, False)])
def test_same_face_by_mean_keypoint_distance(face_points: np.ndarray, shift: float, one: bool) -> None:
    """A face and the same face moved by ``shift`` eye distances: one face while well under an eye distance."""
    moved = face_points + np.array([shift * eye_distance(face_points), 0.0])
    assert same_face(face_points, moved) == one


def test_a_double_merges_into_the_older_track(face_points: np.ndarray) -> None:
    """Two reported tracks on one face, the newer a larger crop whose keypoints lie 0.4 eye distances
    off (as on crowd_walk): the older keeps the face and its id. A face 1.5 eye distances away is another."""
    shift = np.array([0.4 * eye_distance(face_points), 0.0])

    def track(id: int, points: np.ndarray, grow: float = 1.0) -> Track:
        fit = square_from_keypoints(points)
        square = Square(fit.x0, fit.y0, round(fit.side * grow))
        return Track(id=id, square=square, smoother=None, keypoints=points, smoothed=points)

    older, newer = track(3, face_points), track(7, face_points + shift, grow=1.7)
    assert older.square.iou(newer.square) < 0.5  # squares alone would keep both
    assert [tr.id for tr in Tracker._one_per_face([newer, older])] == [3]
    other = track(8, face_points + 1.5 * shift / 0.4)
    assert [tr.id for tr in Tracker._one_per_face([other, older])] == [3, 8]
    older.low = 1  # a face whose score fell this frame has old keypoints: no evidence of a double
    assert len(Tracker._one_per_face([newer, older])) == 2
