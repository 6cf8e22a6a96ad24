"""Face tracks: detect now and then, otherwise crop each face from its previous keypoints.

The network re-centres a face inside its crop every frame, so a crop built from the last
keypoints (model.crop.square_from_keypoints) follows the face without the detector. The
detector runs every ``detect_every`` frames, when there is no track, and when a track's
keypoints turn implausible; it finds new faces and confirms old ones.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import queue
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np

from fkd.model.crop import CROP_SIZE, Square, crop_face, square_from_box, square_from_keypoints
from fkd.model.detect import Box, FaceDetector
from fkd.model.schema import KAGGLE_MEAN
from fkd.realtime.smooth import OneEuro, OneEuroParams
from fkd.realtime.timing import Reservoir

#: Defaults of fkd-live, chosen with bench/live_fps.py (see realtime/USAGE.md).
DETECT_EVERY = 30  # frames between detector runs while tracking
DETECT_SIDE = 320  # the detector's frame is shrunk to this longer side


@dataclass(frozen=True)
class Plausibility:
    """Bounds on how keypoints may sit in the crop they were predicted from.

    Keypoints are aligned to Kaggle's mean layout by a similarity transform (scale, rotation,
    shift). A face cropped from its own last keypoints aligns with scale near 1, a small
    shift and a small residual; a crop of background gives a shrunken, displaced or torn
    layout about half the time (the network was only ever shown faces). Measured with
    bench/plausibility.py on the shipped weights (figures in realtime/USAGE.md): these
    bounds keep 100 % of the tracked frames of the shared clips and 99.5 % of 300-W faces,
    and reject over half of the background crops per frame, so a track that lost its face
    ends within a few frames.
    """

    min_scale: float = 0.88
    max_scale: float = 1.35
    max_shift: float = 0.1  # of the crop side
    max_residual: float = 0.075  # RMS, of the crop side
    max_angle: float = 40.0  # degrees


@dataclass(frozen=True)
class LayoutFit:
    scale: float  # layout size relative to Kaggle's mean layout
    shift: float  # layout centre offset from the mean layout's centre, in crop sides
    angle: float  # degrees
    residual: float  # RMS distance after alignment, in crop sides

    def shape_ok(self, bounds: Plausibility) -> bool:
        """A face-like layout, wherever it sits in the crop (judges crops from detector boxes)."""
        return self.residual <= bounds.max_residual and abs(self.angle) <= bounds.max_angle

    def ok(self, bounds: Plausibility) -> bool:
        """A face-like layout where a crop from the face's own keypoints puts it."""
        return (self.shape_ok(bounds) and bounds.min_scale <= self.scale <= bounds.max_scale
                and self.shift <= bounds.max_shift)


_MEAN_CENTRE = KAGGLE_MEAN.mean(0)
_K = KAGGLE_MEAN - _MEAN_CENTRE
_K_PERP = np.stack([-_K[:, 1], _K[:, 0]], axis=1)  # _K rotated by 90 degrees
_K_NORM = float((_K**2).sum())


def fit_layout(crop_points: np.ndarray) -> LayoutFit:
    """Least-squares similarity from Kaggle's mean layout onto ``crop_points`` (15, 2)."""
    p = np.asarray(crop_points, dtype=np.float64)
    centre = p.mean(0)
    q = p - centre
    a = float((q * _K).sum()) / _K_NORM  # scale * cos(angle)
    b = float((q * _K_PERP).sum()) / _K_NORM  # scale * sin(angle)
    residual = float(np.sqrt(((q - a * _K - b * _K_PERP) ** 2).sum() / len(q)))
    shift = float(np.hypot(*(centre - _MEAN_CENTRE)))
    return LayoutFit(math.hypot(a, b), shift / CROP_SIZE, math.degrees(math.atan2(b, a)), residual / CROP_SIZE)


def square_iou(a: Square, b: Square) -> float:
    """Intersection over union of two squares."""
    x0, y0 = max(a.x0, b.x0), max(a.y0, b.y0)
    x1, y1 = min(a.x0 + a.side, b.x0 + b.side), min(a.y0 + a.side, b.y0 + b.side)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / float(a.side**2 + b.side**2 - inter)


@dataclass
class Track:
    """One face followed over frames."""

    id: int
    square: Square  # where to crop it in the next frame
    smoother: OneEuro
    keypoints: np.ndarray | None = None  # last plausible raw keypoints, frame pixels
    smoothed: np.ndarray | None = None
    confirmed_at: float = 0.0  # stream time (s) when the detector last found this face
    misses: int = 0  # detector runs in a row that did not find it
    from_box: bool = True  # square came from a detector box, not from keypoints
    frames: int = 0  # frames with plausible keypoints
    bad: int = 0  # consecutive frames with implausible keypoints
    last_fit: LayoutFit | None = field(default=None, repr=False)


class FaceSearch:
    """One detector pass for the tracker: known faces are looked for near where they are,
    new ones elsewhere.

    Haar spends most of its time on face-like windows and on the small scales: a full-frame
    pass at 320 px costs 15-35 ms on the shared clips, most of it on the face. Here each
    tracked face is confirmed in a small window around its square (the face ~64 px there),
    and new faces are looked for on the frame with the tracked faces painted flat, which Haar
    rejects at once, and only down to ``min_new_face`` of the shorter side. On the shared
    clips (bench/live_fps.py --detector-cost): confirming costs 2-5 ms instead of 15-35 ms,
    looking for new faces 9-12 ms more, and the tracked faces are found as often. With no
    track it is the plain full-frame pass, down to the detector's own smallest face.
    """

    def __init__(self, detector: FaceDetector, max_side: int | None, context: float = 1.6, face_px: int = 64,
                 min_new_face: float = 0.15) -> None:
        self.detector = detector
        self.max_side = max_side
        self.context = context
        self.size = round(face_px * context)
        self._near = FaceDetector(replace(detector.config, min_face=0.4))  # the face fills most of the window
        self._new = FaceDetector(replace(detector.config, min_face=max(min_new_face, detector.config.min_face)))

    def __call__(self, gray: np.ndarray, squares: list[Square], discover: bool = True) -> list[Box]:
        if not squares:
            return self.detector.detect(gray, max_side=self.max_side)
        boxes = [box for sq in squares for box in self.near(gray, sq)]
        if discover:
            masked = gray.copy()
            for sq in squares:
                s = sq.scaled(1.2)
                masked[max(s.y0, 0):max(s.y0 + s.side, 0), max(s.x0, 0):max(s.x0 + s.side, 0)] = 128
            boxes += self._new.detect(masked, max_side=self.max_side)
        return boxes

    def near(self, gray: np.ndarray, square: Square) -> list[Box]:
        """Faces in a window around ``square``, in frame pixels."""
        window = square.scaled(self.context)
        k = window.side / self.size
        found = self._near.detect(crop_face(gray, window, self.size))
        return [(round(window.x0 + x * k), round(window.y0 + y * k), round(w * k), round(h * k))
                for x, y, w, h in found]


class DetectorWorker:
    """Runs a FaceSearch in a background thread while the loop goes on tracking.

    Even the cheaper search costs 5-20 model calls; run inline, it stalls the frame it falls
    on. Here it overlaps tracking on the other core and its boxes are merged a few frames
    later (faces move little meanwhile). One request at a time.
    """

    def __init__(self, search: FaceSearch) -> None:
        self.search = search
        self.seconds = Reservoir()  # bounded, as every timing of the live loop
        self._requests: queue.Queue[tuple | None] = queue.Queue(maxsize=1)
        self._results: queue.Queue[list[Box]] = queue.Queue(maxsize=1)
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="fkd-detector", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            t0 = time.perf_counter()
            boxes = self.search(*request)
            self.seconds.append(time.perf_counter() - t0)
            self._results.put(boxes)

    def submit(self, gray: np.ndarray, squares: list[Square], discover: bool) -> None:
        self.busy = True
        self._requests.put((gray, squares, discover))

    def poll(self, wait: bool = False) -> list[Box] | None:
        """The boxes of the request in flight once it is done (``wait``: block until then)."""
        if not self.busy:
            return None
        try:
            boxes = self._results.get(block=wait)
        except queue.Empty:
            return None
        self.busy = False
        return boxes

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._requests.put(None, timeout=1.0)
        self._thread.join(timeout=2.0)


class Tracker:
    """Decides each frame's crop squares and keeps ids stable across frames.

    With no track, the detector runs inline on every frame until it finds a face. While
    tracking, it runs every ``detect_every`` frames (sooner when a track turns implausible)
    in a DetectorWorker when ``background`` is set, inline otherwise. A run still going when
    the next is due is waited for, so the cadence holds in frames even when a file is read
    far faster than real time; on a live camera the wait never happens.

    A track ends when its first keypoints are implausible (a false detection), after
    ``max_bad`` implausible frames in a row (the face is lost), or when the detector has
    missed it more than ``max_misses`` times in a row over at least ``max_unconfirmed``
    seconds of stream (a track stuck on a texture the network reads as a face). Haar misses
    the backlit face in 12 % of frames, up to 6 frames in a row, so one miss proves nothing:
    after a miss the detector looks again every ``detect_every // 5`` frames until it finds
    the face or gives up on it.
    """

    def __init__(self, detector: FaceDetector, detect_every: int = DETECT_EVERY, max_faces: int = 4,
                 detect_side: int | None = DETECT_SIDE, smoothing: OneEuroParams | None = OneEuroParams(),
                 bounds: Plausibility = Plausibility(), max_bad: int = 3, max_misses: int = 3,
                 max_unconfirmed: float = 2.0, background: bool = True) -> None:
        self.detector = detector
        self.detect_every = max(1, detect_every)
        self.max_faces = max_faces
        self.detect_side = detect_side
        self.smoothing = smoothing
        self.bounds = bounds
        self.max_bad = max_bad
        self.max_misses = max_misses
        self.max_unconfirmed = max_unconfirmed
        self.search = FaceSearch(detector, detect_side)
        self.worker = DetectorWorker(self.search) if background else None
        self.tracks: list[Track] = []
        self._ids = itertools.count()
        self._since_detect = 0
        self._force = False
        self.detections = 0  # detector runs, inline or in the worker

    # -- before the model -----------------------------------------------------------------
    def plan(self, gray: np.ndarray, t: float) -> list[Track]:
        """The tracks to crop in the frame at ``t`` seconds, merging or running the detector as due."""
        self._since_detect += 1
        regular = self._since_detect >= self.detect_every
        retry = any(tr.misses for tr in self.tracks) and self._since_detect >= max(1, self.detect_every // 5)
        due = self._force or regular or retry
        if self.worker is not None and (boxes := self.worker.poll(wait=due)) is not None:
            self._merge(boxes, t)
        if not self.tracks:
            self._merge(self.search(gray, []), t)
            self.detections += 1
            self._since_detect = 0
        elif due:
            self.detections += 1
            self._since_detect, self._force = 0, False
            # retries after a miss or an implausible frame only look for the faces already tracked
            squares, discover = [tr.square for tr in self.tracks], regular and len(self.tracks) < self.max_faces
            if self.worker is None:
                self._merge(self.search(gray, squares, discover), t)
            else:
                self.worker.submit(gray, squares, discover)
        return list(self.tracks)

    def _merge(self, boxes: list[Box], t: float) -> None:
        """Match detector boxes to tracks by overlap; unmatched boxes start tracks.

        A matched track keeps its own square (from keypoints, steadier than Haar's box, and
        newer when the boxes come from the worker) unless its keypoints were implausible.
        """
        squares = [square_from_box(b) for b in boxes]
        claimed: set[int] = set()
        for track in sorted(self.tracks, key=lambda tr: -tr.frames):
            best, best_iou = None, 0.3
            for i, sq in enumerate(squares):
                iou = square_iou(track.square, sq)
                if i not in claimed and iou > best_iou:
                    best, best_iou = i, iou
            if best is None:
                track.misses += 1
            else:
                claimed.add(best)
                track.confirmed_at, track.misses = t, 0
                if track.bad:
                    track.square, track.from_box = squares[best], True  # lost its face: restart from the box
        self.tracks = [tr for tr in self.tracks
                       if tr.misses <= self.max_misses or t - tr.confirmed_at <= self.max_unconfirmed]
        for i, sq in enumerate(squares):
            if i not in claimed and len(self.tracks) < self.max_faces:
                self.tracks.append(Track(next(self._ids), sq, OneEuro(self.smoothing or OneEuroParams()), t))

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()

    # -- after the model ------------------------------------------------------------------
    def update(self, tracks: list[Track], crop_points: np.ndarray, frame_points: np.ndarray,
               t: float) -> list[Track]:
        """Take this frame's keypoints; returns the tracks whose keypoints are plausible."""
        good = []
        for track, pc, pf in zip(tracks, crop_points, frame_points):
            fit = fit_layout(pc)
            track.last_fit = fit
            if not (fit.shape_ok(self.bounds) if track.from_box else fit.ok(self.bounds)):
                track.bad += 1
                self._force = True
                continue
            if track.from_box:  # a detector box frames faces loosely: re-crop before judging and reporting
                track.square, track.from_box, track.bad = square_from_keypoints(pf), False, 0
                continue
            side = track.square.side
            track.keypoints = pf
            track.smoothed = track.smoother(pf, t, scale=side) if self.smoothing else pf
            track.square = square_from_keypoints(pf)
            track.bad = 0
            track.frames += 1
            good.append(track)
        # a detection that never gave a face, or a face lost for max_bad frames, ends its track
        self.tracks = [tr for tr in self.tracks if not ((tr.frames == 0 and tr.bad) or tr.bad >= self.max_bad)]
        self._drop_duplicates()
        return good

    def _drop_duplicates(self) -> None:
        """Two tracks that converged on one face: keep the older."""
        keep: list[Track] = []
        for track in sorted(self.tracks, key=lambda t: t.id):
            if all(square_iou(track.square, k.square) < 0.5 for k in keep):
                keep.append(track)
        self.tracks = keep

