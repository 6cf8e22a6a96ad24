"""What code written for dlib's 68-point landmarks uses, on fkd: change ``import dlib`` to
``from fkd.realtime.compat import dlib`` and the rest runs as it is, without a C++ build.

- ``get_frontal_face_detector()`` gives a detector called as dlib's, ``detector(image, upsample)``
  (the count is accepted and ignored: YuNet finds small faces without it), returning
  ``rectangle`` objects: YuNet proposes and fkd's face score decides, as in ``fkd-predict``; the
  rectangle is the bounding box of the face's 68 points, close to dlib's brow-to-chin box.
- ``shape_predictor(path)`` ignores ``path`` (or takes None): the model is fkd's shipped 68-point
  one. ``predictor(image, rect)`` gives a ``full_object_detection`` with ``part(i).x``/``.y``,
  ``parts()``, ``num_parts`` and ``rect``, in iBUG's order as dlib's is.

Images go in as dlib code has them: numpy arrays, grey, or colour in either channel order (fkd
turns colour to grey, where the order changes the grey level by a few per cent at most).
Coordinates are whole pixels, as dlib's are.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from fkd.realtime.api import FaceLandmarks, Landmarker


class point:  # dlib's own class name, so that code written for dlib runs unchanged
    """A pixel position, as dlib's ``point``: ``x`` and ``y``, whole pixels."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = int(x), int(y)

    def __repr__(self) -> str:
        return f"({self.x}, {self.y})"


class rectangle:  # dlib's own class name
    """A face box, as dlib's ``rectangle(left, top, right, bottom)``, with its accessor methods."""

    def __init__(self, left: int = 0, top: int = 0, right: int = 0, bottom: int = 0) -> None:
        self._ltrb = (int(left), int(top), int(right), int(bottom))

    def left(self) -> int:
        return self._ltrb[0]

    def top(self) -> int:
        return self._ltrb[1]

    def right(self) -> int:
        return self._ltrb[2]

    def bottom(self) -> int:
        return self._ltrb[3]

    def width(self) -> int:
        return self._ltrb[2] - self._ltrb[0] + 1

    def height(self) -> int:
        return self._ltrb[3] - self._ltrb[1] + 1

    def center(self) -> point:
        return point((self._ltrb[0] + self._ltrb[2]) // 2, (self._ltrb[1] + self._ltrb[3]) // 2)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, rectangle) and self._ltrb == other._ltrb

    def __hash__(self) -> int:
        return hash(self._ltrb)

    def __repr__(self) -> str:
        return "[({}, {}) ({}, {})]".format(*self._ltrb)


class full_object_detection:  # dlib's own class name
    """A face's 68 points, as dlib's shape predictor returns them."""

    def __init__(self, rect: rectangle, points: Sequence[point]) -> None:
        self.rect = rect
        self._points = list(points)

    @property
    def num_parts(self) -> int:
        return len(self._points)

    def part(self, index: int) -> point:
        return self._points[index]

    def parts(self) -> list[point]:
        return list(self._points)


@lru_cache(maxsize=1)
def _landmarker() -> Landmarker:
    """fkd's 68-point model, loaded once for every detector and predictor made here."""
    return Landmarker(points=68)


def _points68(face: FaceLandmarks) -> np.ndarray:
    assert face.points68 is not None  # a 68-point model always gives them
    return np.asarray(face.points68)


def _bounds(points: np.ndarray) -> rectangle:
    (x0, y0), (x1, y1) = np.floor(points.min(0)), np.ceil(points.max(0))
    return rectangle(int(x0), int(y0), int(x1), int(y1))


class _FrontalFaceDetector:
    def __call__(self, image: np.ndarray, upsample_num_times: int = 0) -> list[rectangle]:
        return [_bounds(_points68(face)) for face in _landmarker().landmarks(np.asarray(image))]


def get_frontal_face_detector() -> _FrontalFaceDetector:
    """dlib's face detector's stand-in (see the module's docstring)."""
    return _FrontalFaceDetector()


class shape_predictor:  # dlib's own class name
    """dlib's 68-point shape predictor's stand-in; ``path`` (dlib's model file) is not read."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = path

    def __call__(self, image: np.ndarray, rect: rectangle) -> full_object_detection:
        box = (rect.left(), rect.top(), rect.width(), rect.height())
        (face,) = _landmarker().landmarks(np.asarray(image), boxes=[box])
        return full_object_detection(rect, [point(round(x), round(y)) for x, y in _points68(face)])
