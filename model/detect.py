"""The OpenCV Haar face detector, configured once for training and the live app alike.

Training crops labelled photos through this same detector, so the network learns the
boxes (and their quirks) that the live app will hand it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import cv2.data  # the cascade folder; a submodule that cv2 imports itself but its stubs omit
import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels


@dataclass(frozen=True)
class DetectorConfig:
    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    #: smallest face side, as a fraction of the shorter frame side
    min_face: float = 0.08

    def as_dict(self) -> dict:
        return asdict(self)


DETECTOR = DetectorConfig()


class FaceDetector:
    """Haar cascade run on a grey frame, optionally downscaled first for speed."""

    def __init__(self, config: DetectorConfig = DETECTOR) -> None:
        path = Path(cv2.data.haarcascades) / config.cascade
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"could not load the Haar cascade {path}; is opencv-python<5 installed?")
        self.config = config

    def detect(self, gray: np.ndarray, max_side: int | None = None) -> list[Box]:
        """Faces in ``gray``, largest first, in its own pixels.

        ``max_side`` shrinks the frame so its longer side is at most that many pixels
        before detecting; boxes are scaled back.
        """
        h, w = gray.shape[:2]
        scale = 1.0
        small = gray
        if max_side is not None and max(h, w) > max_side:
            scale = max_side / max(h, w)
            small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        min_px = max(16, int(self.config.min_face * min(small.shape[:2])))
        found = self._cascade.detectMultiScale(
            small,
            scaleFactor=self.config.scale_factor,
            minNeighbors=self.config.min_neighbors,
            minSize=(min_px, min_px),
        )
        boxes = [tuple(int(round(v / scale)) for v in b) for b in np.asarray(found).reshape(-1, 4)]
        boxes.sort(key=lambda b: b[2] * b[3], reverse=True)
        return boxes  # type: ignore[return-value]
