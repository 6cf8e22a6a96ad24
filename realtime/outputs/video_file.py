"""The annotated video of fkd-live: written to a locked temporary, renamed into place when released.

An mp4 is playable only once ``cv2.VideoWriter.release`` has written its index, so the file
appears under its name only then: a run stopped by a signal releases it (and keeps every frame),
one killed with -9 leaves any previous file untouched and a temporary the next run removes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np

from fkd.model.errors import FkdError, UsageError
from fkd.model.io.files import atomic_path
from fkd.model.io.outputs import OutputLock
from fkd.model.io.paths import make_parent, require_utf8, shown

FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


class VideoFile:
    """``write`` frames, then ``release``: the same calls as cv2.VideoWriter, plus the safety."""

    def __init__(self, path: Path, fps: float, width: int, height: int, flag: str = "--output") -> None:
        self.path = Path(path)
        code = FOURCC.get(self.path.suffix.lower())
        if code is None:
            raise UsageError(f"{flag} {shown(self.path)} must end in .mp4 (mp4v) or .avi (MJPG).")
        require_utf8(self.path, flag)
        self.frames = 0
        with contextlib.ExitStack() as stack:  # on any failure: temporary removed, lock released
            make_parent(self.path, flag)
            stack.enter_context(OutputLock(self.path, flag))
            tmp = stack.enter_context(atomic_path(self.path, keep_suffix=True))
            self._writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*code), fps, (width, height))
            if not self._writer.isOpened():
                raise FkdError(f"{flag} {shown(self.path)}: cannot write the video (is the folder writable?).")
            self._stack = stack.pop_all()

    def isOpened(self) -> bool:  # cv2.VideoWriter's name
        return self._writer.isOpened()

    def write(self, image: np.ndarray) -> None:
        self._writer.write(image)
        self.frames += 1

    def release(self) -> None:
        """Write the index, rename the file into place, free the lock; safe to call twice."""
        self._writer.release()
        self._stack.close()
