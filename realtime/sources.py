"""Where frames come from: a camera, a video file, or image files and folders.

Every failure to open becomes an FkdError with one sentence; a stream that breaks after it
opened simply ends, so the caller can finalise what it wrote so far.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fkd.model.errors import FkdError

# FFmpeg's own messages ("moov atom not found") would follow our one-sentence errors; the
# variable is read when OpenCV's FFmpeg backend opens its first file. Set it to override.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"})


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

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_camera(index: int, width: int | None = None, height: int | None = None) -> VideoSource:
    """Camera ``index``; the error names the index and points to --video."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # each backend logs its own failure
    try:
        cap = cv2.VideoCapture(index)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not cap.isOpened():
        cap.release()
        raise FkdError(f"camera {index} could not be opened (no camera at that index, or it is busy); "
                       f"pass --camera with another index, or --video FILE to read a file.")
    if width:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    if height:
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog
    return VideoSource(cap, f"camera {index}", live=True)


def open_video(path: Path) -> VideoSource:
    """A video file; missing, unreadable or non-video files are refused in one sentence."""
    path = Path(path)
    if not path.exists():
        raise FkdError(f"video file {path} does not exist.")
    if not path.is_file():
        raise FkdError(f"{path} is not a file; --video wants a video file.")
    if not os.access(path, os.R_OK):
        raise FkdError(f"video file {path} is not readable (permission denied).")
    # one decoder thread: FFmpeg's own threads only contend with fkd's on a small CPU (+5 % fps here)
    cap = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
    if not cap.isOpened():
        cap.release()
        raise FkdError(f"{path} could not be opened as a video (corrupt, or not a video format).")
    return VideoSource(cap, f"video file {path}", live=False)


def list_images(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """(image path, name for its annotated copy), for files named and images under folders named.

    Files named explicitly are passed on whatever their suffix, so a non-image is reported
    rather than silently ignored; in folders only image suffixes count (300-W keeps its
    .pts files beside the photos). Names keep the folder's own name and the path below it,
    so two folders with the same file names do not overwrite each other's copies.
    """
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        found = Path(root) / name
                        yield found, Path(path.resolve().name) / found.relative_to(path)
        else:
            yield path, Path(path.name)


def read_image(path: Path) -> np.ndarray | None:
    """A BGR image, or None when the file is missing or not a decodable image."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return image
