"""The 300-W photos turned by known angles that the roll figure is measured on, for both sides.

bench/mediapipe_face_state.py (in MediaPipe's own venv, without fkd) and bench/face_state.py (in
fkd's) must read the very same photos turned the very same way, so both take them from here,
which needs nothing but OpenCV and NumPy.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
#: the turns (degrees, clockwise) each photo is measured at, besides 0
TURNS = (-30.0, -15.0, 15.0, 30.0)


def photo_list(count: int = 36) -> list[Path]:
    """Every n-th 300-W photo in name order: the same list on every run and in both scripts."""
    photos = sorted((SHARED / "data" / "300w").glob("*/*.jpg"))
    step = max(1, len(photos) // count)
    return photos[::step][:count]


def turned(image: np.ndarray, degrees: float) -> np.ndarray:
    """The image turned clockwise by ``degrees`` about its centre (cv2 counts counter-clockwise)."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
