"""fkd as a library: load the weights once, then keypoints for photos, boxes or video frames.

``import fkd`` exposes what is here (``fkd.Landmarker``, ``fkd.FaceLandmarks``, ``fkd.FaceTracker``)
without importing it until first use, so importing fkd stays cheap. It runs the same pipelines
as the commands (``fkd-predict`` for photos, ``fkd-live`` for frames), so a face found here is
the face those commands report, with the same box, keypoints and score.

    >>> import cv2, fkd
    >>> marker = fkd.Landmarker()                       # the shipped weights, loaded once
    >>> for face in marker.landmarks(cv2.imread("photo.jpg")):
    ...     print(face.box, face.score, face.point("nose_tip"), face.pose.yaw, face.expression["smile"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fkd.model.artifact import Predictor
from fkd.model.errors import UsageError
from fkd.model.schema import INDEX, KEYPOINTS
from fkd.realtime.defaults import DETECT_EVERY, FOV, MAX_FACES
from fkd.realtime.outputs.records import Face
from fkd.realtime.state.pose import Pose
from fkd.realtime.tracking.pipeline import (
    StageTimes,
    live_pipeline,
    photo_pipeline,
    run_on,
    second_look,
    still_face,
)
from fkd.realtime.tracking.smooth import OneEuroParams

Box = tuple[int, int, int, int]  # x, y, w, h in image pixels


@dataclass(frozen=True)
class FaceLandmarks:
    """One face: where it is, its 15 keypoints (and 68 points from a 68-point model) and how sure
    the network is that it is a face.

    ``box`` is (x, y, w, h) in image pixels: the crop square, grown to hold every keypoint and
    clipped to the image. ``keypoints`` is a (15, 2) float array of (x, y) image pixels (0-based
    pixel centres) in Kaggle's order, ``fkd.KEYPOINTS``; "left" is the subject's left. ``score``
    is 0..1 (1.0 for every face with weights that have no score head). ``id`` is the face's index
    in the image, or its track id (stable while the face is tracked) for video frames.

    ``pose`` is where the head points: ``yaw``, ``pitch`` and ``roll`` in degrees (yaw > 0: the
    nose turns toward the image's right edge; pitch > 0: up; roll > 0: the face turns clockwise
    in the image) and ``position``, the head's centre in cm in OpenCV's camera frame (x right,
    y down, z away), under the Landmarker's field of view. ``expression`` maps ``mouth_open``,
    ``smile`` and ``brow_raise`` to 0..1 (docs: "What the face is doing").

    ``points68`` is a (68, 2) float array of the iBUG 300-W points in their order (index 0 to 67,
    ``fkd.model.schema.IBUG68``) with ``Landmarker(points=68)``, else None; ``keypoints`` are
    then the 15 those give (the mapping in ``fkd.model.schema``).
    """

    id: int
    box: Box
    keypoints: np.ndarray
    score: float
    pose: Pose | None = None
    expression: dict[str, float] = field(default_factory=dict)
    points68: np.ndarray | None = None

    def point(self, name: str) -> tuple[float, float]:
        """The (x, y) of one keypoint by its Kaggle name, e.g. ``"nose_tip"``."""
        if name not in INDEX:
            raise KeyError(f"{name!r} is not one of fkd's keypoints ({', '.join(KEYPOINTS)})")
        x, y = self.keypoints[INDEX[name]]
        return float(x), float(y)

    def as_dict(self) -> dict[str, tuple[float, float]]:
        """Keypoint name -> (x, y), in Kaggle's order."""
        return {name: self.point(name) for name in KEYPOINTS}


def _landmarks(face: Face) -> FaceLandmarks:
    box = tuple(int(v) for v in face.box)
    p68 = None if face.points68 is None else np.asarray(face.points68, np.float32)
    return FaceLandmarks(int(face.id), (box[0], box[1], box[2], box[3]),
                         np.asarray(face.keypoints, np.float32), float(face.score), face.pose, dict(face.expression),
                         p68)


def _gray(image: np.ndarray) -> np.ndarray:
    """A uint8 grey view of a BGR, BGRA or grey numpy image; anything else is refused in one sentence."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise UsageError(f"image must be a uint8 numpy array (as cv2.imread gives), not {image.dtype}.")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    raise UsageError(f"image must be grey (H, W) or BGR (H, W, 3), not of shape {image.shape}.")


class Landmarker:
    """fkd's keypoint model, loaded once, for any number of images and videos.

    ``weights`` is an fkd weights file (``.pt`` with its ``.onnx`` twin beside it); ``None`` means
    the shipped model. ``threads`` are the model's CPU threads: 1 is fastest for one stream on a
    small machine (bench/RESULTS.md). ``threshold`` is the face score a detector candidate needs
    to count as a face; ``None`` takes the one calibrated with the weights. ``flip`` (on, as in
    ``fkd-predict``) makes ``landmarks`` also run each face mirrored and average the two looks:
    2.3 % lower NME for twice the network's time. ``tracker`` takes its own ``flip``, off as in
    ``fkd-live``, where time per frame counts more. ``fov`` is the camera's vertical field of view
    in degrees, the camera model of each face's pose (``--fov`` of the commands). Bad weights
    raise ``fkd.FkdError`` with one sentence naming the file.

    ``points=68`` takes the shipped 68-point model (the whole face, jaw included) when no
    ``weights`` are given, and insists on a 68-point file when they are; ``None`` takes whatever
    the weights predict (the shipped 15-point model without weights).
    """

    def __init__(self, weights: str | Path | None = None, threads: int = 1, threshold: float | None = None,
                 flip: bool = True, fov: float = FOV, points: int | None = None) -> None:
        if threads < 1:
            raise UsageError(f"threads must be 1 or more, not {threads}.")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise UsageError(f"threshold must be a probability between 0 and 1, not {threshold}.")
        if not 1.0 <= fov <= 179.0:
            raise UsageError(f"fov must be a field of view from 1 to 179 degrees, not {fov}.")
        self.fov = fov
        self.predictor = Predictor(Path(weights) if weights is not None else None, threads=threads, flip=flip,
                                   points=points)
        self.threshold = self.predictor.threshold if threshold is None else threshold
        self._photos = photo_pipeline(self.predictor, self.threshold, fov=fov)

    @property
    def has_score(self) -> bool:
        """Whether the weights score each face (else every score is 1.0)."""
        return self.predictor.has_score

    def landmarks(self, image: np.ndarray, boxes: Sequence[Sequence[float]] | None = None) -> list[FaceLandmarks]:
        """The faces in ``image`` (a numpy BGR or grey uint8 array), left to right.

        Without ``boxes`` fkd's own detector finds the faces, and candidates scoring under the
        threshold are dropped, as in ``fkd-predict``. With ``boxes`` ((x, y, w, h) face boxes
        in image pixels, from any detector) there is one result per box, in the boxes' order and
        whatever its score: each box is cropped as fkd crops a detector box, then once more from
        the keypoints found, which is the crop the network was trained on.
        """
        gray = _gray(image)
        if boxes is None:  # the detector takes the colour image when there is one
            return [_landmarks(face) for face in self._photos.process(np.asarray(image))]
        given = [tuple(float(v) for v in box) for box in boxes]
        if any(len(box) != 4 or box[2] <= 0 or box[3] <= 0 for box in given):
            raise UsageError("each box must be (x, y, w, h) with a positive width and height.")
        point_set = self.predictor.points
        first, _ = run_on(self.predictor.run, gray,
                          [point_set.square_from_box((b[0], b[1], b[2], b[3])) for b in given])
        points, scores = second_look(self.predictor.run, gray, first, points=point_set)
        h, w = gray.shape
        return [_landmarks(still_face(i, point_set.square_from_points(p), p, float(s), w, h, point_set, self.fov))
                for i, (p, s) in enumerate(zip(points, scores))]

    def tracker(self, fps: float | None = 30.0, *, max_faces: int = MAX_FACES, detect_every: int = DETECT_EVERY,
                smooth: bool = True, flip: bool = False) -> FaceTracker:
        """A tracker for the frames of one video or camera, fed in order (see ``FaceTracker``)."""
        return FaceTracker(self, fps, max_faces=max_faces, detect_every=detect_every, smooth=smooth, flip=flip)


class FaceTracker:
    """Faces followed across the frames of one video, as ``fkd-live`` follows them.

    Feed frames in order with ``update``; each face keeps its ``id`` while it is tracked and its
    keypoints are smoothed (One Euro filter) unless ``smooth=False``. With ``fps`` (a file's frame
    rate) a frame's time is its index / fps and the detector runs every ``detect_every`` frames,
    so results do not depend on the machine's speed (frames come one at a time here, so each
    detector request is made on the frame at hand, where fkd-live reads a file ahead and makes it
    on the frame it is merged into: the same file can give fkd-live a few more faces); with
    ``fps=None`` (a live camera) times come
    from the clock and the detector runs about once a second. The detector works in a background
    thread: use the tracker as a context manager, or call ``close()``, to stop it.
    """

    def __init__(self, landmarker: Landmarker, fps: float | None = 30.0, *, max_faces: int = MAX_FACES,
                 detect_every: int = DETECT_EVERY, smooth: bool = True, flip: bool = False) -> None:
        if fps is not None and fps <= 0:
            raise UsageError(f"fps must be positive (or None for a live camera), not {fps}.")
        if max_faces < 1 or detect_every < 1:
            raise UsageError("max_faces and detect_every must be 1 or more.")
        self.fps = fps
        self._pipeline = live_pipeline(landmarker.predictor.with_flip(flip), live=fps is None, max_faces=max_faces,
                                       detect_every=detect_every, smoothing=OneEuroParams() if smooth else None,
                                       threshold=landmarker.threshold, fov=landmarker.fov)
        self._times = StageTimes()
        self._frame = 0
        self._start: float | None = None

    def update(self, frame: np.ndarray, t: float | None = None) -> list[FaceLandmarks]:
        """The faces in the next frame (BGR or grey); ``t`` overrides the frame's time in seconds."""
        gray = _gray(frame)
        if t is None:
            if self.fps is not None:
                t = self._frame / self.fps
            else:
                now = self._times.clock()
                self._start = now if self._start is None else self._start
                t = now - self._start
        faces = self._pipeline.process(gray, self._frame, t, self._times, image=frame)
        self._frame += 1
        return [_landmarks(face) for face in faces]

    def close(self) -> None:
        """Stop the background detector (idempotent)."""
        self._pipeline.tracker.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
