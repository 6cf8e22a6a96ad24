"""Video files: frames read one at a time, with the file's size and fps.

The frame and the source classes here are what every other source builds on: a camera or a
network stream is a ``VideoSource`` too (``fkd.realtime.sources.live``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fkd.model.errors import FkdError
from fkd.model.io.paths import OpenCvName, check_input_file, shown

# FFmpeg's own messages ("moov atom not found") would follow our one-sentence errors; the
# variable is read when OpenCV's FFmpeg backend opens its first file. Set it to override.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")



@dataclass
class Frame:
    index: int
    time: float  # seconds since the start of the stream
    image: np.ndarray  # BGR, uint8
    gray: np.ndarray | None = None  # filled by whoever needs it first


class VideoSource:
    """Frames of a camera or a file, with the source's size and fps, read one at a time."""

    def __init__(self, capture: cv2.VideoCapture, name: str, live: bool) -> None:
        self._cap = capture
        self.name = name
        self.live = live
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0  # cameras often report 0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = count if count > 0 and not live else None
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise FkdError(f"{name} opened but gave no frame; it is empty, corrupt or busy.")
        self._first: np.ndarray | None = first
        self.height, self.width = first.shape[:2]
        self.frames_read = 0

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        while True:
            if self._first is not None:
                image, self._first = self._first, None
            else:
                ok, image = self._cap.read()
                if not ok or image is None:
                    return
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            t = time.monotonic() - start if self.live else self.frames_read / self.fps
            yield Frame(self.frames_read, t, image)
            self.frames_read += 1

    #: called after the capture is released (the descriptor behind a /proc/self/fd name)
    closing: Callable[[], None] | None = None

    def close(self) -> None:
        self._cap.release()
        if self.closing is not None:
            self.closing()

    def notes(self) -> list[str]:
        """Lines for the run's summary about the source itself (none for a file)."""
        return []

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: Path) -> VideoSource:
    """A video file, whatever bytes its path is made of; missing, unreadable or non-video files are
    refused in one sentence."""
    path = check_input_file(path, "--video", "video file")  # no FIFO hang
    handle = OpenCvName(path, "--video")  # a non-UTF-8 path would crash OpenCV: /proc/self/fd/N instead
    try:
        # one decoder thread: FFmpeg's own threads only contend with fkd's on a small CPU (+5 % fps here)
        cap = cv2.VideoCapture(handle.name, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
        if not cap.isOpened():
            cap.release()
            raise FkdError(f"{shown(path)} could not be opened as a video (corrupt, or not a video format).")
        source = VideoSource(cap, f"video file {shown(path)}", live=False)
    except BaseException:
        handle.close()
        raise
    source.closing = handle.close
    return source

