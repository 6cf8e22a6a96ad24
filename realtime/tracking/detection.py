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
            raise ValueError("lag_frames must be 1..idle_frames so that one request is in flight at a time")


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
        self._future: Future[list[Detection]] | None = None
        self._due: int = 0  # frame index at which the request in flight is merged (files)
        self._last: float | None = None  # frame index (files) or clock time (live) of the last request

    def step(self, image: np.ndarray, frame: int, holding: bool, ahead: np.ndarray | None = None,
             ending: bool = False) -> list[Detection]:
        """Detections of a request that is due at ``frame`` (or done, live), then a new request
        on ``image`` (colour or grey) if one is due; ``holding``: faces are being tracked, which
        sets the pace. The tracker drops the detections of faces it holds already.

        On a file, ``ahead`` is the frame ``lag_frames`` after this one, which the request is
        made on instead (None: the caller does not read ahead, and ``image`` is used). ``ending``:
        the caller reads ahead and the file ends before ``lag_frames`` more frames, so a request
        due now is run on this frame at once (a clip of a frame or two still gets its faces). The
        first request on a file read ahead is run at once too, so the first frames do not go
        without faces while it is in flight."""
        found = self._collect(frame)
        if self._future is None and self._request_due(frame, holding):
            first = self._last is None and ahead is not None  # a file read ahead: its first frames need not wait
            self._last = self.clock() if self.live else frame
            self.calls += 1
            if not self.live and (ending or first):
                self.waits += 1  # the loop waits for the whole pass
                return found + self._detect(image)
            target = ahead if ahead is not None and not self.live else image
            # the worker reads the frame while the loop goes on, and the loop draws the overlay
            # into the frame in place: the worker gets its own copy
            self._future = self._pool.submit(self._detect, target.copy())
            self._due = frame + self.pacing.lag_frames
        return found

    def _detect(self, image: np.ndarray) -> list[Detection]:
        start = self.clock()
        found = self.detector.detect(image, min_face=self.min_face)
        self.seconds.append(self.clock() - start)
        return found

    def _collect(self, frame: int) -> list[Detection]:
        future = self._future
        if future is None:
            return []
        if self.live:
            if not future.done():
                return []
        elif frame < self._due:
            return []
        elif not future.done():
            self.waits += 1
        self._future = None
        return future.result()

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
