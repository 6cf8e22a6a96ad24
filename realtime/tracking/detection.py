"""Full-frame face detection for the live loop, in the background and at a bounded rate.

The frame loop never runs the detector itself: requests go to a single worker thread
(OpenCV's DNN releases the GIL, so it uses the other core) and their detections come back
later. When they come back depends on the source:

- a camera or stream (``live``): a request at most every ``idle_seconds`` while no face is
  held (``track_seconds`` while faces are), merged as soon as it is done; the loop never waits;
- a video file: a request every ``idle_frames`` frames while no face is held
  (``track_frames`` while faces are), merged exactly ``lag_frames`` frames later. The loop
  waits for it then if it is not done, so the same file always gives the same faces; a
  request is one YuNet pass, which on an idle core takes less than the loop's own
  ``lag_frames`` frames, so the wait is rare there (on a busy machine it is not). The loop
  reads a file ``lag_frames`` frames ahead and the request is made on the frame it will be
  merged into (``ahead``), so its boxes are where the faces are when they are used: a face
  crossing a third of its width per frame would otherwise be gone from its box (crowd_walk,
  bench/crowd_faces.py).

A scene cut (``cut``, realtime/tracking/cuts.py) asks for a search at once, whatever the pace:
live, the worker drops the old shot's request if it has not started it and runs the new one
next; on a file the request is made on the cut's frame (the frame read ahead) and merged into
that very frame, so the new shot's faces are reported from its first frame. Its detections come
back with ``new_shot`` set, so that the tracker ends the held faces the new shot does not have.

``calls`` and ``waits`` count requests and the merges that had to block, for tests and the
exit summary.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fkd.model.detect import Detection, FaceDetector
from fkd.realtime.clock import Clock, now
from fkd.realtime.defaults import DETECT_EVERY, MIN_FACE
from fkd.realtime.timing import Reservoir


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """How often full detection runs; see the module docstring for files and live sources."""

    idle_frames: int = 3
    track_frames: int = DETECT_EVERY
    lag_frames: int = 3
    idle_seconds: float = 0.05
    track_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.lag_frames <= min(self.idle_frames, self.track_frames):
            raise ValueError("lag_frames must be 1..idle_frames so that one routine request is in flight at a time")


@dataclass(frozen=True)
class _Request:
    """A request in flight: its detections, the frame they are merged into (files), and whether
    it is a scene cut's search."""

    future: Future[list[Detection]]
    due: int
    cut: bool


class BackgroundDetection:
    """Submits detection requests to one worker thread and hands back their boxes when due."""

    def __init__(self, detector: FaceDetector, live: bool, pacing: Pacing = Pacing(),
                 min_face: int = MIN_FACE, clock: Clock = now) -> None:
        self.detector = detector
        self.live = live
        self.pacing = pacing
        self.min_face = min_face
        self.clock = clock
        self.calls = 0  # requests submitted
        self.waits = 0  # merges for which the loop had to block (files only)
        self.seconds = Reservoir()  # worker time per request
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fkd-detector")
        self._pending: list[_Request] = []  # oldest first: a routine request, and a cut's search after it
        self._last: float | None = None  # frame index (files) or clock time (live) of the last request
        self.new_shot = False  # the last step's detections are a scene cut's search

    def step(self, image: np.ndarray, frame: int, holding: bool, ahead: np.ndarray | None = None,
             ending: bool = False, cut: bool = False) -> list[Detection]:
        """Detections of a request that is due at ``frame`` (or done, live), then a new request
        on ``image`` (colour or grey) if one is due; ``holding``: faces are being tracked, which
        sets the pace. The tracker drops the detections of faces it holds already.

        On a file, ``ahead`` is the frame ``lag_frames`` after this one, which the request is
        made on instead (None: the caller does not read ahead, and ``image`` is used). ``ending``:
        the caller reads ahead and the file ends before ``lag_frames`` more frames, so a request
        due now is run on this frame at once (a clip of a frame or two still gets its faces). The
        first request on a file read ahead is run at once too, so the first frames do not go
        without faces while it is in flight.

        ``cut``: the frame a request would be made on (``ahead`` on a file read ahead, else
        ``image``) starts a new shot, so one is made on it now, whatever the pace (module
        docstring); ``new_shot`` says when its detections come back."""
        found = self._collect(frame)
        if cut:
            return found + self._search_cut(image, frame, ahead)
        if not self._pending and self._request_due(frame, holding):
            first = self._last is None and ahead is not None  # a file read ahead: its first frames need not wait
            if not self.live and (ending or first):
                return found + self._detect_now(image, frame)
            target = ahead if ahead is not None and not self.live else image
            self._submit(target, frame, cut=False)
        return found

    def _search_cut(self, image: np.ndarray, frame: int, ahead: np.ndarray | None) -> list[Detection]:
        """A scene cut's search; its detections now when the cut is this very frame of a file."""
        if self.live:
            # what was asked before is of the old shot: not run if the worker has not started it,
            # not merged if it has (the worker takes the new search next)
            for request in self._pending:
                request.future.cancel()
            self._pending = []
            self._submit(image, frame, cut=True)
        elif ahead is not None:
            self._submit(ahead, frame, cut=True)
        else:
            self.new_shot = True
            return self._detect_now(image, frame)
        return []

    def _submit(self, target: np.ndarray, frame: int, cut: bool) -> None:
        self._last = self.clock() if self.live else frame
        self.calls += 1
        # the worker reads the frame while the loop goes on, and the loop draws the overlay
        # into the frame in place: the worker gets its own copy
        future = self._pool.submit(self._detect, target.copy())
        self._pending.append(_Request(future, frame + self.pacing.lag_frames, cut))

    def _detect_now(self, image: np.ndarray, frame: int) -> list[Detection]:
        """A request run in the loop's own thread, which waits for the whole pass (files only)."""
        self._last = frame
        self.calls += 1
        self.waits += 1
        return self._detect(image)

    def _detect(self, image: np.ndarray) -> list[Detection]:
        start = self.clock()
        found = self.detector.detect(image, min_face=self.min_face)
        self.seconds.append(self.clock() - start)
        return found

    def _collect(self, frame: int) -> list[Detection]:
        """Detections of the requests due at ``frame`` (files) or done (live), oldest first; a
        cut's search replaces what came before it, which was of the old shot."""
        self.new_shot = False
        found: list[Detection] = []
        while self._pending:
            request = self._pending[0]
            if (not request.future.done()) if self.live else frame < request.due:
                break
            if not self.live and not request.future.done():
                self.waits += 1
            self._pending.pop(0)
            if request.cut:
                self.new_shot, found = True, []
            found += request.future.result()
        return found

    def _request_due(self, frame: int, holding: bool) -> bool:
        if self._last is None:
            return True
        p = self.pacing
        if self.live:
            return self.clock() - self._last >= (p.track_seconds if holding else p.idle_seconds)
        return frame - self._last >= (p.track_frames if holding else p.idle_frames)

    def close(self) -> None:
        """Stop the worker; a request in flight is finished first (one detection at most)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
