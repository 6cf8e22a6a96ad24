"""Cameras: --camera's value checked, the device opened within a deadline, and the listing.
"""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

import cv2

from fkd.model.errors import FkdError, UsageError
from fkd.realtime.defaults import RECONNECTS, STREAM_TIMEOUT
from fkd.realtime.sources.live import LiveSource, open_with_deadline


def parse_camera(text: str, highest: int) -> int | Path:
    """--camera's value: an index 0..``highest``, or a camera device path such as /dev/video2.

    Checked before OpenCV sees it: OpenCV crashes on some indices (-1) and overflows on others.
    """
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        index = int(text)
        if not 0 <= index <= highest:
            raise UsageError(f"--camera {text}: a camera index is a whole number from 0 to {highest}; "
                             f"fkd-live --list-cameras shows the cameras there are.")
        return index
    path = Path(text)
    if not path.exists():
        raise FkdError(f"--camera {text}: no such device; give a camera index (0, 1, ...) or a device path "
                       f"such as /dev/video0 (fkd-live --list-cameras shows them).")
    if not stat.S_ISCHR(path.stat().st_mode):
        raise UsageError(f"--camera {text} is not a camera device; use --video for a video file or stream.")
    return path


def open_camera(camera: int | Path = 0, width: int | None = None, height: int | None = None,
                fps: float | None = None, timeout: float = STREAM_TIMEOUT) -> LiveSource:
    """A camera by index or device path, asked for ``width`` x ``height`` at ``fps`` where it allows.

    The summary notes what the camera actually gives, since drivers round or ignore requests.
    """
    name = f"camera {camera}"

    def make() -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(camera), cv2.CAP_V4L2) if isinstance(camera, Path) else cv2.VideoCapture(camera)
        if cap.isOpened():
            if width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                cap.set(cv2.CAP_PROP_FPS, fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog
        return cap

    cap = open_with_deadline(make, timeout)
    if cap is None:
        raise FkdError(f"{name} could not be opened (no camera there, or it is busy); pass --camera with another "
                       f"index or device (fkd-live --list-cameras), or --video to read a file or stream.")
    reported = cap.get(cv2.CAP_PROP_FPS)
    source = LiveSource(cap, name, reopen=lambda: open_with_deadline(make, timeout), reconnects=RECONNECTS)
    asked = [f"{width or '?'}x{height or '?'}" if width or height else "", f"{fps:g} fps" if fps else ""]
    gave = f"{source.width}x{source.height}" + (f" at {reported:g} fps" if reported > 0 else " (fps not reported)")
    wished = " at ".join(a for a in asked if a)
    source.notes_first.append(f"{name} gave {gave}" + (f" (asked for {wished})." if wished else "."))
    return source


def list_cameras(timeout: float = 3.0) -> list[tuple[str, int, int]]:
    """(camera, width, height) for each camera that opens and gives a frame.

    On Linux the /dev/video* devices are tried (none: no camera, answered at once); elsewhere
    indices 0..9. Each try has a deadline, so a hung driver cannot stall the listing.
    """
    if sys.platform.startswith("linux"):
        found = sorted((p for p in Path("/dev").glob("video*") if p.name[5:].isdigit()), key=lambda p: int(p.name[5:]))
        tries: list[int | Path] = list(found)
    else:
        tries = list(range(10))
    cameras = []
    for camera in tries:
        def make(camera: int | Path = camera) -> cv2.VideoCapture:
            cap = cv2.VideoCapture(str(camera), cv2.CAP_V4L2) if isinstance(camera, Path) else cv2.VideoCapture(camera)
            if cap.isOpened() and not cap.grab():
                cap.release()
            return cap

        cap = open_with_deadline(make, timeout)
        if cap is not None:
            cameras.append((str(camera), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
            cap.release()
    return cameras

