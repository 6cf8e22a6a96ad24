"""Video clips for the tests, made from real frames: read a shared clip's first frames, write frames as a file.

One home for both, so every test that needs a short or doctored clip (blanked stretches, joined
shots, a cut) writes it the same way.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def clip_frames(path: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of a video (fewer if it is shorter)."""
    cap = cv2.VideoCapture(str(path))
    frames = [frame for _ in range(count) if (frame := cap.read()[1]) is not None]
    cap.release()
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 30, fourcc: str = "MJPG") -> Path:
    """``frames`` as a video at ``path``: MJPG (.avi) keeps each frame nearly as it was; mp4v is
    what fkd-live writes to .mp4."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
