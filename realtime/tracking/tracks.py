"""Face tracks: each face is cropped from its own last keypoints, and lives while its score holds.

The network re-centres a face inside its crop every frame, so a crop built from the last
keypoints (model.crop.square_from_keypoints) follows the face without a detector. The
same forward pass gives a face score; that score is the one rule for "is there still a
face": a track ends ``patience`` frames after its score falls below the threshold, and a
detector candidate becomes a track only if its score clears it (on two crops, ``Tracker``).

One face is one track: two tracks whose keypoints coincide are one face and merge into the
older (``same_face``), and a scene cut (realtime/tracking/cuts.py) starts a search at once and
ends the held faces the new shot does not have.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from fkd.model.crop import CROP_SIZE, Square
from fkd.model.detect import Detection
from fkd.model.points import KAGGLE15, PointSet
from fkd.model.schema import INDEX
from fkd.realtime.tracking.cuts import CutDetector
from fkd.realtime.tracking.detection import BackgroundDetection
from fkd.realtime.tracking.smooth import OneEuro, OneEuroParams

#: Detector candidates overlapping a held face by more than this are that face.
HELD_IOU = 0.3
#: Two tracks whose squares overlap by this much have converged on one face.
SAME_FACE_IOU = 0.5
#: Two faces whose keypoints lie this many eye distances apart on average, or less, are one face
#: reported twice. Measured so on crowd_walk, such doubles (a 10 px crop and a 17 px one on one
#: small face) lay 0.39-0.62 eye distances apart, while a face half hidden behind another lies
#: 1.18 or more from it (bench/doubles.py, tests/test_doubles.py).
SAME_FACE_EYES = 0.85


def eyes_per_side(points: PointSet = KAGGLE15) -> float:
    """The eye distance of a point set's mean face, as a share of its crop's side: a face's eye
    distance from the square its keypoints give, which a turned head does not shrink the way it
    shrinks the distance between its eye points."""
    eyes = points.kaggle15(points.template)
    return float(np.linalg.norm(eyes[INDEX["left_eye_center"]] - eyes[INDEX["right_eye_center"]]) / CROP_SIZE)


#: Kaggle's mean face's (the 15-point crop's) eye distance per crop side
EYES_PER_SIDE = eyes_per_side(KAGGLE15)


def same_face(a: np.ndarray, b: np.ndarray, points: PointSet = KAGGLE15) -> bool:
    """Whether two sets of frame keypoints (of ``points``' set) are one face: their mean distance
    is under ``SAME_FACE_EYES`` of the faces' eye distance (the mean of the two, from their squares)."""
    eyes = eyes_per_side(points) * (points.square_from_points(a).side + points.square_from_points(b).side) / 2
    return float(np.linalg.norm(a - b, axis=1).mean()) < SAME_FACE_EYES * eyes


def _inside(points: np.ndarray, frame_size: tuple[int, int]) -> bool:
    """Whether keypoints can belong to a face in the frame: their centre inside it, their
    spread no larger than the frame."""
    w, h = frame_size
    cx, cy = points.mean(0)
    spread = np.ptp(points, axis=0)
    return bool(0 <= cx < w and 0 <= cy < h and spread[0] <= w and spread[1] <= h)


def _one_face(a: Track, b: Track, points: PointSet = KAGGLE15) -> bool:
    """Whether two tracks follow one face (``Tracker._one_per_face``); crops that do not touch are
    two faces without comparing keypoints (most pairs: it keeps a crowd's frame cheap)."""
    overlap = a.square.iou(b.square)
    if overlap >= SAME_FACE_IOU:
        return True
    if overlap == 0 or a.low or b.low or a.keypoints is None or b.keypoints is None:
        return False
    return same_face(a.keypoints, b.keypoints, points)


@dataclass(kw_only=True)
class Track:
    """One face followed over frames (keyword-only: the fields are too alike to pass by position)."""

    id: int
    square: Square  # where to crop it in the next frame
    smoother: OneEuro | None
    keypoints: np.ndarray | None = None  # last raw keypoints that scored above the threshold, frame pixels
    smoothed: np.ndarray | None = None  # what is reported
    score: float = 0.0  # the face score of the last crop
    frames: int = 0  # frames reported
    low: int = 0  # consecutive frames with the score below the threshold
    from_detector: bool = True  # square came from the detector; re-cropped from keypoints before reporting
    first_score: float = 0.0  # a candidate's score on the detector's crop, judged with its second (Tracker)


class Tracker:
    """Decides each frame's crops, turns scored keypoints into tracks, keeps ids stable.

    ``plan`` gives the tracks to crop this frame: the held ones, plus candidates from a
    background detection that has come back. ``update`` takes the model's keypoints and
    scores for them. Every candidate is re-cropped from its keypoints (``refine``: one more
    pass in the same frame) and decided on both passes, below.

    When a reported face is lost (its score fell, as in a fast turn or motion blur), or a
    candidate was turned down (a face the score may take a few frames later, when it has turned
    or come closer: a crowd's passers-by), the detector goes back to the pace it keeps while no
    face is held until its next request, so the face is found within a few frames rather than
    at the next routine search (bench/crowd_faces.py).

    Each candidate is judged on the mean score of two crops: the detector's, and a second cut
    from the keypoints of the first (the crop the tracker would cut). The detector's five points
    frame a small or turned face loosely: on crowd_walk the second crop alone keeps 86 % of
    YuNet's faces, the first 80 %. The second alone is not enough: a crop of a shop display
    beside a turned head scored 0.001 on the first and 0.56 on the second (bench/RESULTS.md).
    A held face's next crop is moved on by its last step (the mean move of its keypoints
    between the two frames before), so a face crossing the frame stays inside its crop.

    A scene cut (``cuts``) asks the detector for a search at once; when it comes back, the held
    faces that no detection overlaps end there, rather than ``patience`` frames later, and the
    detections become candidates on that frame. On a file read ahead the cut is seen on the
    frame read ahead, so the search is merged into the cut's own frame.

    ``points`` is the model's point set: the crops are framed for it (the detector's five points
    and the keypoints' re-cut alike), and the keypoints are its points (15 or 68).
    """

    def __init__(self, detection: BackgroundDetection, threshold: float, max_faces: int = 4,
                 smoothing: OneEuroParams | None = OneEuroParams(), patience: int = 2,
                 max_candidates: int = 12, points: PointSet = KAGGLE15) -> None:
        self.detection = detection
        self.points = points
        self.threshold = threshold
        self.max_faces = max_faces
        self.smoothing = smoothing
        self.patience = max(1, patience)
        self.max_candidates = max_candidates
        self.tracks: list[Track] = []
        self._ids = itertools.count()
        self._searching = False  # a face was lost since the last detection request
        self.cuts = CutDetector()

    # -- before the model -----------------------------------------------------------------
    def plan(self, image: np.ndarray, frame: int, ahead: np.ndarray | None = None, ending: bool = False
             ) -> list[Track]:
        """The tracks to crop in frame number ``frame`` (``image``: the frame, colour or grey, for
        the detector; ``ahead`` and ``ending``: on a file read ahead, the frame the detector's
        request is for and whether the file ends first, ``BackgroundDetection.step``): held faces,
        then any new candidates."""
        # a cut is looked for on the frame a request would be made on: on a file, the one read ahead
        if ahead is not None and not self.detection.live:
            cut = self.cuts(ahead, frame + self.detection.pacing.lag_frames)
        else:
            cut = self.cuts(image, frame)
        requests = self.detection.calls
        found = self.detection.step(image, frame, bool(self.tracks) and not self._searching, ahead, ending, cut)
        if self.detection.calls > requests:
            self._searching = False
        if self.detection.new_shot:  # the held faces the new shot has not got end now
            self.tracks = [tr for tr in self.tracks
                           if any(tr.square.iou(self.points.square_from_landmarks(d.landmarks)) > HELD_IOU
                                  for d in found)]
        held = [tr.square for tr in self.tracks]
        free = self.max_faces - len(self.tracks)
        if found and free > 0:
            self.tracks += self._candidates(found, held)
        return list(self.tracks)

    def _candidates(self, found: list[Detection], held: list[Square]) -> list[Track]:
        new = []
        for det in found[: self.max_candidates]:
            square = self.points.square_from_landmarks(det.landmarks)
            if all(square.iou(h) <= HELD_IOU for h in held):
                new.append(Track(id=-1, square=square, smoother=None))  # an id only once it scores
        return new

    # -- after the model ------------------------------------------------------------------
    def update(self, tracks: list[Track], frame_points: list[np.ndarray], scores: np.ndarray, t: float,
               frame_size: tuple[int, int]) -> list[Track]:
        """Take this frame's keypoints and scores; returns the tracks to report for this frame.

        Candidates come back from ``refine`` instead, re-cropped from their keypoints: call
        the model once more on their new squares and ``update`` again with those, which
        decides them.
        ``frame_size`` (width, height) bounds where a face can be: keypoints that would put
        the next crop mostly outside the frame, or make it far larger than the frame, count
        as a low score (weights without a score head give 1.0 to anything).
        """
        reported = []
        for track, points, score in zip(tracks, frame_points, scores):
            track.score = float(score)
            if not _inside(points, frame_size):
                track.low += 1
                continue
            if track.from_detector:  # judged with its second crop, cut from these keypoints (refine)
                track.square, track.from_detector = self.points.square_from_points(points), False
                track.first_score = track.score
                continue
            if (score if track.id >= 0 else (score + track.first_score) / 2) < self.threshold:
                track.low += 1
                self._searching |= track.id < 0  # a turned-down candidate: look again soon
                continue
            if track.id < 0 and self._held_already(track.square, points):
                track.low += 1  # a face held already: it keeps its track
                continue
            track.low = 0
            if track.id < 0:
                track.id = next(self._ids)
                track.smoother = OneEuro(self.smoothing) if self.smoothing else None
            step = 0.0 if track.keypoints is None else (points - track.keypoints).mean(0)
            track.keypoints = points
            track.smoothed = (track.smoother(points, t, scale=track.square.side) if track.smoother is not None
                              else points)
            track.square = self.points.square_from_points(points + step)  # next frame's crop, once a frame
            track.frames += 1
            reported.append(track)
        # a candidate gets one chance; a held face ends after `patience` low frames in a row
        self._searching |= any(tr.id >= 0 and tr.low >= self.patience for tr in self.tracks)
        self.tracks = [tr for tr in self.tracks
                       if not (tr.low and (tr.from_detector or tr.id < 0)) and tr.low < self.patience]
        self.tracks = self._one_per_face(self.tracks, self.points)[: self.max_faces]
        kept = {id(tr) for tr in self.tracks}
        return [tr for tr in reported if id(tr) in kept]

    def refine(self) -> list[Track]:
        """This frame's candidates, re-cropped from their keypoints, to run once more and be decided."""
        return [tr for tr in self.tracks if tr.id < 0 and not tr.from_detector and tr.low == 0]

    def _held_already(self, square: Square, points: np.ndarray) -> bool:
        """Whether a candidate (its crop and keypoints) doubles a held face reported this frame
        (``same_face``; only crops that touch are compared)."""
        return any(same_face(points, tr.keypoints, self.points) for tr in self.tracks
                   if tr.id >= 0 and tr.low == 0 and tr.keypoints is not None and tr.square.iou(square) > 0)

    @staticmethod
    def _one_per_face(tracks: list[Track], points: PointSet = KAGGLE15) -> list[Track]:
        """Tracks on one face merge into the oldest (candidates come last): their squares have
        converged, or, both reported this frame, their keypoints coincide (``same_face``). A face
        whose score fell this frame has last frame's keypoints, which are no evidence either way."""
        keep: list[Track] = []
        for track in sorted(tracks, key=lambda tr: (tr.id < 0, tr.id)):
            if all(not _one_face(track, k, points) for k in keep):
                keep.append(track)
        return keep

    def close(self) -> None:
        self.detection.close()
