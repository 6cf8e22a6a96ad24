"""Frame -> faces: plan crops (track, plus candidates from detection), crop, one batched
model call giving keypoints and face scores, back to pixels.

Photos (fkd-predict) take the same steps from every candidate the detector proposes: each gets
a second pass from its keypoints, which is the crop the tracker would have made, and is kept
as the tracker keeps a candidate, on the mean of the two passes' scores.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import cv2
import numpy as np

from fkd.model.artifact import Predictor
from fkd.model.crop import (
    CROP_SIZE,
    Square,
    apply_matrix,
    crop_face,
    to_frame,
    upright_crop,
)
from fkd.model.detect import FaceDetector
from fkd.model.points import KAGGLE15, PointSet
from fkd.realtime.clock import Clock, now
from fkd.realtime.defaults import MAX_FACES, MIN_FACE
from fkd.realtime.outputs.records import Face
from fkd.realtime.state.faces import FaceStates, face_state
from fkd.realtime.state.pose import DEFAULT_FOV
from fkd.realtime.timing import Reservoir
from fkd.realtime.tracking.detection import DETECT_EVERY, BackgroundDetection, Pacing
from fkd.realtime.tracking.smooth import OneEuroParams
from fkd.realtime.tracking.tracks import SAME_FACE_IOU, Track, Tracker

#: crops -> (points (N, K, 2) crop pixels, face scores (N,)): ``Predictor.run``
Run = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
STAGES = ("read", "detect", "crop", "model", "track", "state", "draw", "write")


class StageTimes:
    """Per-stage wall times, one entry per frame, for the exit summary and the benchmark."""

    def __init__(self, clock: Clock = now) -> None:
        self.times: dict[str, Reservoir] = defaultdict(Reservoir)  # bounded: a day-long run stays flat
        self.clock = clock
        self._t = clock()

    def start(self) -> None:
        self._t = self.clock()

    def lap(self, stage: str) -> None:
        """Charge the time since the last lap (or start) to ``stage``."""
        t = self.clock()
        self.times[stage].append(t - self._t)
        self._t = t

    def summary(self) -> dict[str, tuple[float, float]]:
        """Stage -> (median, 95th percentile) in milliseconds, in pipeline order."""
        order = [s for s in STAGES if s in self.times] + [s for s in self.times if s not in STAGES]
        return {s: (1e3 * float(np.median(self.times[s])), 1e3 * float(np.percentile(self.times[s], 95)))
                for s in order}


def face_record_of(face_id: int, square: Square, points: np.ndarray, score: float, width: int,
                   height: int, point_set: PointSet = KAGGLE15) -> Face:
    """A record for frame points (of ``point_set``) cropped from ``square`` (their own square,
    from the raw points): the box is that square grown to hold every point, clipped to the
    frame; points are clipped to the frame too (a face at the border). A 68-point face keeps its
    68 and reports the 15 Kaggle keypoints they give as its keypoints."""
    pts = np.clip(points, 0, [width - 1, height - 1])
    x0 = max(0, min(square.x0, int(np.floor(pts[:, 0].min()))))
    y0 = max(0, min(square.y0, int(np.floor(pts[:, 1].min()))))
    x1 = min(width - 1, max(square.x0 + square.side, int(np.ceil(pts[:, 0].max()))))
    y1 = min(height - 1, max(square.y0 + square.side, int(np.ceil(pts[:, 1].max()))))
    box = (x0, y0, x1 - x0, y1 - y0)
    if point_set.count == 68:
        return Face(face_id, box, point_set.kaggle15(pts), score, points68=pts)
    return Face(face_id, box, pts, score)


def still_face(face_id: int, square: Square, points: np.ndarray, score: float, width: int, height: int,
               point_set: PointSet, fov: float) -> Face:
    """``face_record_of`` for a still image (a photo, or boxes given through the API), with its pose
    and expressions against the standard neutral face: a photo has no history to learn its own."""
    face = face_record_of(face_id, square, points, score, width, height, point_set)
    face.pose, face.expression = face_state(face.keypoints, width, height, fov, face.points68)
    return face


def crops_of(gray: np.ndarray, squares: list[Square]) -> np.ndarray:
    if not squares:
        return np.zeros((0, CROP_SIZE, CROP_SIZE), np.uint8)
    return np.stack([crop_face(gray, sq) for sq in squares])


def run_on(run: Run, gray: np.ndarray, squares: list[Square]) -> tuple[list[np.ndarray], np.ndarray]:
    """One batched forward pass over the crops of ``squares``: frame keypoints and scores."""
    points, scores = run(crops_of(gray, squares))
    return [to_frame(p, sq) for p, sq in zip(points, squares)], scores


def second_look(run: Run, gray: np.ndarray, first: list[np.ndarray], upright: bool = False,
                points: PointSet = KAGGLE15) -> tuple[list[np.ndarray], np.ndarray]:
    """Each face cut again from its first keypoints (frame pixels, of ``points``' set) and run
    once more: the crop the network was trained on, whatever box found the face. ``upright``
    also turns the crop so that the face stands upright (``model.crop.upright_crop``); otherwise
    it is the square the live tracker would cut."""
    if not upright:
        return run_on(run, gray, [points.square_from_points(p) for p in first])
    cuts = [upright_crop(gray, p, template=points.template) for p in first]
    crops = np.stack([c for c, _ in cuts]) if cuts else np.zeros((0, CROP_SIZE, CROP_SIZE), np.uint8)
    answers, scores = run(crops)
    return [apply_matrix(np.linalg.inv(m), q) for q, (_, m) in zip(answers, cuts)], scores


class LivePipeline:
    """The per-frame loop body of fkd-live, timing each stage into ``times``.

    Each reported face also gets its pose and expressions from ``states`` (one per track, so
    each face's fit starts from its own last pose and its expressions from its own neutral face).
    """

    def __init__(self, run: Run, tracker: Tracker, states: FaceStates | None = None) -> None:
        self.run = run
        self.tracker = tracker
        self.points = tracker.points
        self.states = FaceStates() if states is None else states

    def process(self, gray: np.ndarray, frame: int, t: float, times: StageTimes,
                image: np.ndarray | None = None, ahead: np.ndarray | None = None, ending: bool = False
                ) -> list[Face]:
        """Faces in grey frame number ``frame``, taken at ``t`` seconds; ``image`` is the same
        frame in colour when there is one, which the detector prefers; ``ahead`` and ``ending``, on
        a file read ahead, the frame the detector's next request is for and whether the file ends
        first (``Tracker.plan``)."""
        tracks = self.tracker.plan(gray if image is None else image, frame, ahead, ending)
        times.lap("detect")
        reported = self._score(gray, tracks, t, times)
        if fresh := self.tracker.refine():  # candidates: once more, from their keypoints, to decide them
            reported += self._score(gray, fresh, t, times)
        h, w = gray.shape
        faces = [face_record_of(tr.id, tr.square, tr.smoothed, tr.score, w, h, self.points)
                 for tr in sorted(reported, key=lambda tr: tr.id) if tr.smoothed is not None]
        times.lap("track")
        for face in faces:  # from the smoothed keypoints: their filter is all the angles need (bench/face_state.py)
            face.pose, face.expression = self.states.update(face.id, face.keypoints, w, h, face.points68)
        self.states.forget(tr.id for tr in self.tracker.tracks)
        times.lap("state")
        return faces

    def _score(self, gray: np.ndarray, tracks: list[Track], t: float, times: StageTimes) -> list[Track]:
        squares = [tr.square for tr in tracks]
        crops = crops_of(gray, squares)
        times.lap("crop")
        points, scores = self.run(crops)
        times.lap("model")
        frame_points = [to_frame(p, sq) for p, sq in zip(points, squares)]
        return self.tracker.update(tracks, frame_points, scores, t, (gray.shape[1], gray.shape[0]))


class PhotoPipeline:
    """Faces in a still image: every detector candidate is scored in one batch, cropped again from
    its keypoints and scored again; it is a face when the mean of the two scores clears the
    threshold, as for the tracker's candidates (a turned head's detector crop can score low where
    its keypoints' crop does not: bench/turned_heads.py), and its last look's score clears it too.

    ``min_face`` (pixels) and ``max_side`` set how small a face the detector looks for
    (``model.detect.detection_scale``): a large photo is shrunk to ``max_side`` first.

    ``looks``, ``upright`` and ``average`` choose how the later looks are taken and used
    (measured end to end by bench/photo_nme.py): how many looks in all (each cut from the one
    before's keypoints), turned upright or not, and the last reported alone or averaged with the
    one before.

    ``points`` is the model's point set: its crop framing and its points (15 or 68).
    """

    def __init__(self, run: Run, detector: FaceDetector, threshold: float, max_side: int | None = 800,
                 looks: int = 2, upright: bool = False, average: bool = False,
                 min_face: int = MIN_FACE, fov: float = DEFAULT_FOV, points: PointSet = KAGGLE15) -> None:
        self.points = points
        if looks < 2:
            raise ValueError("a photo takes at least two looks: the detector's box, then the keypoints' crop")
        self.run = run
        self.detector = detector
        self.threshold = threshold
        self.max_side = max_side
        self.min_face = min_face
        self.looks = looks
        self.upright = upright
        self.average = average
        self.fov = fov

    def process(self, image: np.ndarray) -> list[Face]:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h, w = gray.shape
        squares = [self.points.square_from_landmarks(d.landmarks)
                   for d in self.detector.detect(image, max_side=self.max_side, min_face=self.min_face)]
        points, first_scores = run_on(self.run, gray, squares)
        for look in range(self.looks - 1):
            before = points
            points, scores = second_look(self.run, gray, before, self.upright, self.points)
            if look == 0:  # taken as the tracker takes a candidate: on the mean of its two crops' scores
                taken = (first_scores + scores) / 2 >= self.threshold
        if self.average:
            points = [(p + q) / 2 for p, q in zip(points, before)]
        # two candidates on one face: the surer one. Judged on the squares the final keypoints
        # give, not on the crops: a candidate box too small for its face still finds the face's
        # keypoints, but its crop (from its first, shrunken guess) can overlap the right one by
        # less than SAME_FACE_IOU, and the face would be reported twice.
        final = [self.points.square_from_points(p) for p in points]
        kept: list[tuple[Square, np.ndarray, float]] = []
        for i in np.argsort(-scores, kind="stable"):
            if taken[i] and scores[i] >= self.threshold and all(final[i].iou(k[0]) < SAME_FACE_IOU for k in kept):
                kept.append((final[i], points[i], float(scores[i])))
        kept.sort(key=lambda k: k[0].centre)  # ids in reading order, left to right
        return [still_face(i, sq, p, s, w, h, self.points, self.fov) for i, (sq, p, s) in enumerate(kept)]


def live_pipeline(predictor: Predictor, live: bool, *, max_faces: int = MAX_FACES, detect_every: int = DETECT_EVERY,
                  min_face: int = MIN_FACE, smoothing: OneEuroParams | None = OneEuroParams(),
                  threshold: float | None = None, clock: Clock = now, fov: float = DEFAULT_FOV) -> LivePipeline:
    """fkd-live's pipeline for ``predictor`` on a live source (camera, stream) or a video file;
    ``threshold`` defaults to the weights' own; ``fov``, the camera's vertical field of view in
    degrees, sets the camera model of the head pose."""
    pacing = Pacing(track_frames=detect_every, lag_frames=min(Pacing().lag_frames, detect_every))
    detection = BackgroundDetection(FaceDetector(), live=live, pacing=pacing, min_face=min_face, clock=clock)
    tracker = Tracker(detection, predictor.threshold if threshold is None else threshold, max_faces=max_faces,
                      smoothing=smoothing, points=predictor.points)
    return LivePipeline(predictor.run, tracker, FaceStates(fov))


def photo_pipeline(predictor: Predictor, threshold: float | None = None, *, looks: int = 2, upright: bool = False,
                   average: bool = False, min_face: int = MIN_FACE, fov: float = DEFAULT_FOV) -> PhotoPipeline:
    """fkd-predict's pipeline: every detector candidate, checked by ``predictor``'s face score."""
    return PhotoPipeline(predictor.run, FaceDetector(), predictor.threshold if threshold is None else threshold,
                         looks=looks, upright=upright, average=average, min_face=min_face, fov=fov,
                         points=predictor.points)
