"""Full-frame face detection for the live loop, in the background and at a bounded rate.

The frame loop never runs the detector itself: requests go to a single worker thread
(cv2's cascades release the GIL, so it uses the other core) and their candidate boxes come
back later. When they come back depends on the source:

- a camera or stream (``live``): a request at most every ``idle_seconds`` while no face is
  held (``track_seconds`` while faces are), merged as soon as it is done; the loop never waits;
- a video file: a request every ``idle_frames`` frames while no face is held
  (``track_frames`` while faces are), merged exactly ``lag_frames`` frames later. The loop
  waits for it then if it is not done, so the same file always gives the same faces; a
  request is one Haar pass, which on an idle core takes less than the loop's own
  ``lag_frames`` frames, so the wait is rare there (on a busy machine it is not).

``calls`` and ``waits`` count requests and the merges that had to block, for tests and the
exit summary. The costly candidate passes are spread over the requests (``PassSchedule``).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fkd.model.crop import Square
from fkd.model.detect import Box, CandidateDetector
from fkd.realtime.clock import Clock, now
from fkd.realtime.defaults import DETECT_EVERY
from fkd.realtime.timing import Reservoir

#: The detector's frame is shrunk to this longer side (bench/live_fps.py).
DETECT_SIDE = 320


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """How often full detection runs; see the module docstring for files and live sources."""

    idle_frames: int = 3
    track_frames: int = DETECT_EVERY
    lag_frames: int = 2
    idle_seconds: float = 0.05
    track_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.lag_frames <= min(self.idle_frames, self.track_frames):
            raise ValueError("lag_frames must be 1..idle_frames so that one request is in flight at a time")


class PassSchedule:
    """Which candidate pass each request runs: one pass per request, the first (frontal) pass
    every other request and the others in turn between, so a request costs one pass, a
    frontal face is found within two requests and every view is tried within a few."""

    def __init__(self, names: list[str]) -> None:
        self.first, self.others = names[:1], names[1:]
        self._turn = 0

    def next(self) -> list[str]:
        turn, self._turn = self._turn, self._turn + 1
        if not self.others or turn % 2 == 0:
            return self.first
        return [self.others[(turn // 2) % len(self.others)]]


def masked(gray: np.ndarray, squares: list[Square], grow: float = 1.2) -> np.ndarray:
    """A copy of ``gray`` with the held faces painted flat: the cascades reject flat grey at
    once, so a request while tracking spends its time looking for new faces."""
    out = gray.copy()
    for sq in squares:
        s = sq.scaled(grow)
        out[max(s.y0, 0):max(s.y0 + s.side, 0), max(s.x0, 0):max(s.x0 + s.side, 0)] = 128
    return out


class BackgroundDetection:
    """Submits detection requests to one worker thread and hands back their boxes when due."""

    def __init__(self, detector: CandidateDetector, live: bool, pacing: Pacing = Pacing(),
                 max_side: int | None = DETECT_SIDE, clock: Clock = now) -> None:
        self.detector = detector
        self.live = live
        self.pacing = pacing
        self.max_side = max_side
        self.clock = clock
        self.schedule = PassSchedule(detector.pass_names)
        self.calls = 0  # requests submitted
        self.waits = 0  # merges for which the loop had to block (files only)
        self.seconds = Reservoir()  # worker time per request
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fkd-detector")
        self._future: Future[list[Box]] | None = None
        self._due: int = 0  # frame index at which the request in flight is merged (files)
        self._last: float | None = None  # frame index (files) or clock time (live) of the last request

    def step(self, gray: np.ndarray, frame: int, held: list[Square]) -> list[Box]:
        """Boxes of a request that is due at ``frame`` (or done, live), then a new request if due.

        ``held`` are the squares of the faces being tracked: they set the pace and are masked.
        """
        boxes = self._collect(frame)
        if self._future is None and self._request_due(frame, bool(held)):
            image = masked(gray, held) if held else gray
            passes = self.schedule.next()
            self._future = self._pool.submit(self._detect, image, passes)
            self._due = frame + self.pacing.lag_frames
            self._last = self.clock() if self.live else frame
            self.calls += 1
        return boxes

    def _detect(self, image: np.ndarray, passes: list[str]) -> list[Box]:
        start = self.clock()
        boxes = self.detector.detect(image, max_side=self.max_side, passes=passes)
        self.seconds.append(self.clock() - start)
        return boxes

    def _collect(self, frame: int) -> list[Box]:
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
