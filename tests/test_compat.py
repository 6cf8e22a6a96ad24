"""Code written for dlib's 68-point predictor and for face_recognition's face_landmarks runs on fkd
with one changed import: the same calls, the same shapes, fkd's 68 points."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

import fkd
from fkd.realtime.compat import dlib, face_recognition

PHOTO = "data/300w/afw/1051618982_1.jpg"


def test_dlib_style_code_runs_unchanged(shared: Path) -> None:
    image = cv2.imread(str(shared / PHOTO))
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor("shape_predictor_68_face_landmarks.dat")  # the path is not read
    rects = detector(image, 1)
    assert len(rects) == 1
    rect = rects[0]
    assert 0 <= rect.left() < rect.right() < image.shape[1] and 0 <= rect.top() < rect.bottom() < image.shape[0]
    shape = predictor(image, rect)
    assert shape.num_parts == 68 and len(shape.parts()) == 68 and shape.rect == rect
    points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], float)
    own = fkd.Landmarker(points=68).landmarks(image)[0].points68
    assert own is not None
    eyes = np.linalg.norm(own[36] - own[45])
    assert np.abs(points - own).max() < 0.1 * eyes  # fkd's own 68 points, from the rectangle it gave
    assert points[8, 1] > points[30, 1] > points[27, 1]  # chin below the nose tip, below the bridge


def test_face_recognition_style_landmarks(shared: Path) -> None:
    rgb = cv2.cvtColor(cv2.imread(str(shared / PHOTO)), cv2.COLOR_BGR2RGB)
    locations = face_recognition.face_locations(rgb)
    assert len(locations) == 1
    top, right, bottom, left = locations[0]
    assert top < bottom and left < right
    for given in (None, locations):
        (face,) = face_recognition.face_landmarks(rgb, given)
        sizes = {name: len(points) for name, points in face.items()}
        assert sizes == {"chin": 17, "left_eyebrow": 5, "right_eyebrow": 5, "nose_bridge": 4, "nose_tip": 5,
                         "left_eye": 6, "right_eye": 6, "top_lip": 12, "bottom_lip": 12}
        assert np.mean([x for x, _ in face["left_eye"]]) < np.mean([x for x, _ in face["right_eye"]])  # image left
        assert all(isinstance(v, int) for points in face.values() for xy in points for v in xy)
    (small,) = face_recognition.face_landmarks(rgb, model="small")
    assert set(small) == {"nose_tip", "left_eye", "right_eye"}
