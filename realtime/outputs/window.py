"""The preview window, and the check that one can be opened at all.

``cv2.imshow`` with no display does not raise: Qt/GTK abort the whole process. So we look
for a display (and for GUI support in this OpenCV build) before ever calling it.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

TITLE = "fkd-live (q quit, space pause, s snapshot, m mirror, f fps, a head axes)"


def display_problem() -> str | None:
    """Why no window can be shown here, or None when one can."""
    if re.search(r"^\s*GUI:\s*NONE\s*$", cv2.getBuildInformation(), re.MULTILINE):
        return "this OpenCV build has no GUI support"
    if not sys.platform.startswith("linux"):
        return None
    display, wayland = os.environ.get("DISPLAY", ""), os.environ.get("WAYLAND_DISPLAY", "")
    if not (display or wayland):
        return "no display is set (neither DISPLAY nor WAYLAND_DISPLAY)"
    local = re.fullmatch(r":(\d+)(\.\d+)?", display)
    if not wayland and local and not Path(f"/tmp/.X11-unix/X{local.group(1)}").exists():
        return f"DISPLAY={display} names no running X server"
    return None


@dataclass
class ViewState:
    """What the keys toggle."""

    quit: bool = False
    paused: bool = False
    mirror: bool = False
    show_fps: bool = True
    axes: bool = True
    snapshot: bool = False


class Window:
    """Shows frames and turns key presses into ViewState changes."""

    def __init__(self, state: ViewState) -> None:
        self.state = state
        cv2.namedWindow(TITLE, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)

    def show(self, image: np.ndarray) -> None:
        cv2.imshow(TITLE, image)
        self._handle(cv2.waitKey(1))
        while self.state.paused and not self.state.quit:
            self._handle(cv2.waitKey(50))
        if cv2.getWindowProperty(TITLE, cv2.WND_PROP_VISIBLE) < 1:
            self.state.quit = True  # closed with the mouse

    def _handle(self, key: int) -> None:
        key &= 0xFF
        if key in (ord("q"), 27):
            self.state.quit = True
        elif key == ord(" "):
            self.state.paused = not self.state.paused
        elif key == ord("s"):
            self.state.snapshot = True
        elif key == ord("m"):
            self.state.mirror = not self.state.mirror
        elif key == ord("f"):
            self.state.show_fps = not self.state.show_fps
        elif key == ord("a"):
            self.state.axes = not self.state.axes

    def close(self) -> None:
        cv2.destroyWindow(TITLE)


def save_snapshot(image: np.ndarray, index: int, folder: Path = Path()) -> Path:
    """Write the shown frame as a PNG beside the user, named by frame index."""
    path = folder / f"fkd-snapshot-{index:06d}.png"
    cv2.imwrite(str(path), image)
    return path
