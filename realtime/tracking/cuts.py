"""Scene cuts: most of the picture changes between two frames.

After a cut the held faces are gone and the new shot's faces are not held yet; waiting for the
detector's routine pace would leave them unreported for up to a second, so a cut starts a
search at once (``Tracker.plan``). A cut is told by the mean absolute difference between small
grey thumbnails of two consecutive frames: motion, blur and lighting move it a little, a new
shot moves all of it. ``CUT_MAD`` is calibrated by bench/cuts.py on the shared clips: their
consecutive frames reach 12.5 at most (talking_head), while joining any two of them end to end
gives at least 44.6, so the threshold sits near twice the first and half the second.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Thumbnail side in pixels: small enough to ignore noise and small motion, large enough that a
#: new shot changes most of its pixels.
THUMB = 32
#: Pixels sampled per side (nearest) before averaging down to the thumbnail: averaging every
#: pixel of a 640x480 frame cost 0.40 ms, a 128 x 128 sample 0.13 ms, with the same margins.
SAMPLE = 128
#: Mean absolute grey difference (0..255) between two thumbnails above which they are two shots.
CUT_MAD = 24.0


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A ``THUMB`` x ``THUMB`` grey float thumbnail of a frame, colour (BGR) or grey: the mean of
    ``SAMPLE`` x ``SAMPLE`` pixels, converted to grey last, so it costs about the same on any frame."""
    sample = cv2.resize(image, (SAMPLE, SAMPLE), interpolation=cv2.INTER_NEAREST)
    small = cv2.resize(sample, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return small.astype(np.float32)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails."""
    return float(np.abs(a - b).mean())


class CutDetector:
    """Fed frames in order, says which start a new shot.

    ``frame`` numbers let the caller feed a stream that runs ahead of the one it processes (a
    file read ahead, ``Tracker``): a frame that does not follow the last one fed is not compared
    with it, since a gap is no evidence of a cut.
    """

    def __init__(self, threshold: float = CUT_MAD) -> None:
        self.threshold = threshold
        self._last: np.ndarray | None = None
        self._frame: int | None = None
        self.last_difference = 0.0  # of the last two frames compared, for benchmarks

    def __call__(self, image: np.ndarray, frame: int) -> bool:
        """Whether frame number ``frame`` starts a new shot after frame ``frame - 1``."""
        if self._frame is not None and frame <= self._frame:
            return False  # seen already (or out of order): said once
        thumb = thumbnail(image)
        follows = self._last is not None and self._frame == frame - 1
        self.last_difference = difference(thumb, self._last) if follows and self._last is not None else 0.0
        self._last, self._frame = thumb, frame
        return self.last_difference > self.threshold
