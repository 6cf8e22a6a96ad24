"""face_recognition's ``face_landmarks`` and ``face_locations``, on fkd: change ``import face_recognition``
to ``from fkd.realtime.compat import face_recognition`` for code that uses these two.

Images are RGB numpy arrays, as face_recognition loads them. Face locations are
``(top, right, bottom, left)`` tuples; landmarks come as face_recognition gives them, a dict per
face with its own feature names and point lists (``chin``, ``left_eyebrow``, ``right_eyebrow``,
``nose_bridge``, ``nose_tip``, ``left_eye``, ``right_eye``, ``top_lip``, ``bottom_lip``), whole-pixel
(x, y) tuples. Its "left" is the image's left (the subject's right), as in face_recognition; fkd's
own records name sides the other way, after the subject.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fkd.realtime.compat.dlib import _bounds, _landmarker, _points68

#: face_recognition's features as iBUG 68 indices, in its own point order
FEATURES: dict[str, tuple[int, ...]] = {
    "chin": tuple(range(0, 17)),
    "left_eyebrow": tuple(range(17, 22)),
    "right_eyebrow": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nose_tip": tuple(range(31, 36)),
    "left_eye": tuple(range(36, 42)),
    "right_eye": tuple(range(42, 48)),
    "top_lip": (*range(48, 55), 64, 63, 62, 61, 60),
    "bottom_lip": (*range(54, 60), 48, 60, 67, 66, 65, 64),
}

Location = tuple[int, int, int, int]  # top, right, bottom, left


def _bgr(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 and image.shape[2] == 3 else image


def face_locations(img: np.ndarray, number_of_times_to_upsample: int = 1, model: str = "hog") -> list[Location]:
    """The faces in an RGB image as (top, right, bottom, left); ``number_of_times_to_upsample`` and
    ``model`` are accepted and ignored (fkd's detector finds small faces without upsampling)."""
    rects = [_bounds(_points68(face)) for face in _landmarker().landmarks(_bgr(img))]
    return [(r.top(), r.right(), r.bottom(), r.left()) for r in rects]


def face_landmarks(face_image: np.ndarray, face_locations: Sequence[Location] | None = None,
                   model: str = "large") -> list[dict[str, list[tuple[int, int]]]]:
    """Each face's features (see the module's docstring); ``model="small"`` gives face_recognition's
    five-point dict (``nose_tip``, ``left_eye``, ``right_eye``) from the same 68 points."""
    image = _bgr(face_image)
    if face_locations is None:
        faces = _landmarker().landmarks(image)
    else:
        boxes = [(left, top, right - left + 1, bottom - top + 1) for top, right, bottom, left in face_locations]
        faces = _landmarker().landmarks(image, boxes=boxes) if boxes else []
    found = []
    for face in faces:
        points = [(round(float(x)), round(float(y))) for x, y in _points68(face)]
        if model == "small":
            found.append({"nose_tip": [points[33]], "left_eye": [points[36], points[39]],
                          "right_eye": [points[45], points[42]]})
        else:
            found.append({name: [points[i] for i in indices] for name, indices in FEATURES.items()})
    return found
