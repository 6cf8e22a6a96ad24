"""Frame -> faces: plan crops (detect or track), crop, one batched model call, back to pixels.

Photos (fkd-predict) take the same crop and model steps from detector boxes, then a second
pass from the first pass's keypoints, which is the crop the tracker would have made.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

import cv2
import numpy as np

from fkd.model.crop import CROP_SIZE, Square, crop_face, square_from_box, square_from_keypoints, to_frame
from fkd.model.detect import FaceDetector
from fkd.realtime.records import Face
from fkd.realtime.timing import Reservoir
from fkd.realtime.track import Plausibility, Tracker, fit_layout

Predict = Callable[[np.ndarray], np.ndarray]
STAGES = ("read", "detect", "crop", "model", "track", "draw", "write")


class StageTimes:
    """Per-stage wall times, one entry per frame, for the exit summary and the benchmark."""

    def __init__(self) -> None:
        self.times: dict[str, Reservoir] = defaultdict(Reservoir)  # bounded: a day-long run stays flat
        self._t = time.perf_counter()

    def start(self) -> None:
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Charge the time since the last lap (or start) to ``stage``."""
        now = time.perf_counter()
        self.times[stage].append(now - self._t)
        self._t = now

    def summary(self) -> dict[str, tuple[float, float]]:
        """Stage -> (median, 95th percentile) in milliseconds, in pipeline order."""
        order = [s for s in STAGES if s in self.times] + [s for s in self.times if s not in STAGES]
        return {s: (1e3 * float(np.median(self.times[s])), 1e3 * float(np.percentile(self.times[s], 95)))
                for s in order}


def face_from_points(face_id: int, points: np.ndarray, width: int, height: int) -> Face:
    """A record for frame keypoints: the box is their crop square, grown to hold every point,
    clipped to the frame; points are clipped to the frame too (a face at the border)."""
    pts = np.clip(points, 0, [width - 1, height - 1])
    sq = square_from_keypoints(points)
    x0 = max(0, min(sq.x0, int(np.floor(pts[:, 0].min()))))
    y0 = max(0, min(sq.y0, int(np.floor(pts[:, 1].min()))))
    x1 = min(width - 1, max(sq.x0 + sq.side, int(np.ceil(pts[:, 0].max()))))
    y1 = min(height - 1, max(sq.y0 + sq.side, int(np.ceil(pts[:, 1].max()))))
    return Face(face_id, (x0, y0, x1 - x0, y1 - y0), pts)


def crops_of(gray: np.ndarray, squares: list[Square]) -> np.ndarray:
    if not squares:
        return np.zeros((0, CROP_SIZE, CROP_SIZE), np.uint8)
    return np.stack([crop_face(gray, sq) for sq in squares])


class LivePipeline:
    """The per-frame loop body of fkd-live, timing each stage into ``times``."""

    def __init__(self, predict: Predict, tracker: Tracker) -> None:
        self.predict = predict
        self.tracker = tracker

    def process(self, gray: np.ndarray, t: float, times: StageTimes) -> list[Face]:
        """Faces in one grey frame taken at ``t`` seconds."""
        tracks = self.tracker.plan(gray, t)
        times.lap("detect")
        squares = [tr.square for tr in tracks]
        crops = crops_of(gray, squares)
        times.lap("crop")
        points = self.predict(crops)
        times.lap("model")
        frame_points = [to_frame(p, sq) for p, sq in zip(points, squares)]
        good = self.tracker.update(tracks, points, frame_points, t)
        h, w = gray.shape
        faces = [face_from_points(tr.id, tr.smoothed, w, h) for tr in sorted(good, key=lambda tr: tr.id)]
        times.lap("track")
        return faces


class PhotoPipeline:
    """Faces in a still image: detector boxes, then one refining pass from the keypoints."""

    def __init__(self, predict: Predict, detector: FaceDetector, refine: bool = True,
                 bounds: Plausibility = Plausibility()) -> None:
        self.predict = predict
        self.detector = detector
        self.refine = refine
        self.bounds = bounds

    def process(self, image: np.ndarray) -> list[Face]:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h, w = gray.shape
        squares = [square_from_box(b) for b in self.detector.detect(gray, max_side=1280)]
        points = self.predict(crops_of(gray, squares))
        if self.refine and squares:
            squares = [square_from_keypoints(to_frame(p, sq)) for p, sq in zip(points, squares)]
            points = self.predict(crops_of(gray, squares))
        faces: list[Face] = []
        for p, sq in zip(points, squares):
            fit = fit_layout(p)
            if fit.ok(self.bounds) if self.refine else fit.shape_ok(self.bounds):  # drops false detections
                faces.append(face_from_points(len(faces), to_frame(p, sq), w, h))
        return faces
