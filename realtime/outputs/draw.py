"""The overlay: keypoints (optionally labelled), face boxes with track ids, the head's axes, a rolling FPS."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import cv2
import numpy as np

from fkd.model.schema import IBUG68_CONTOURS, KEYPOINTS
from fkd.realtime.clock import Clock, now
from fkd.realtime.outputs.records import Face
from fkd.realtime.state.pose import DEFAULT_FOV, axes_in_image

BOX_COLOUR = (80, 200, 80)  # BGR
POINT_COLOUR = (0, 200, 255)
TEXT_COLOUR = (255, 255, 255)
#: the head's x (toward the subject's left), y (up) and z (out of the face): red, green, blue as usual
AXIS_COLOURS = ((60, 60, 230), (60, 200, 60), (230, 120, 40))


def mirrored(faces: list[Face], width: int) -> list[Face]:
    """The same faces in a left-right mirrored image of ``width`` pixels: the pose mirrored too
    (yaw and roll change sign), so the axes drawn on the mirrored view turn with it."""
    out = []
    for f in faces:
        x, y, w, h = f.box
        kp = f.keypoints.copy()
        kp[:, 0] = (width - 1) - kp[:, 0]
        p68 = None if f.points68 is None else f.points68.copy()
        if p68 is not None:
            p68[:, 0] = (width - 1) - p68[:, 0]
        pose = None if f.pose is None else f.pose.mirrored()
        out.append(replace(f, box=(width - x - w, y, w, h), keypoints=kp, pose=pose, points68=p68))
    return out


def draw_faces(image: np.ndarray, faces: list[Face], labels: bool = False, axes: bool = True,
               fov: float = DEFAULT_FOV) -> None:
    """Draw in place; line widths follow the face size so small and large faces read alike.

    ``axes`` draws each posed face's head axes from its nose tip, projected with the same camera
    model (``fov``) the pose was fitted with, and its yaw, pitch and roll under the box.
    """
    height, width = image.shape[:2]
    for f in faces:
        x, y, w, h = f.box
        thick = max(1, round(w / 120))
        cv2.rectangle(image, (x, y), (x + w, y + h), BOX_COLOUR, thick)
        cv2.putText(image, f"id {f.id}", (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, BOX_COLOUR, 1)
        if axes and f.pose is not None and f.pose.finite:
            origin, ends = axes_in_image(f.pose, width, height, fov, length_cm=6.0)
            start = (round(origin[0]), round(origin[1]))
            for end, colour in zip(ends, AXIS_COLOURS):
                cv2.line(image, start, (round(end[0]), round(end[1])), colour, thick + 1, cv2.LINE_AA)
            text = f"yaw {f.pose.yaw:+.0f} pitch {f.pose.pitch:+.0f} roll {f.pose.roll:+.0f}"
            cv2.putText(image, text, (x, min(height - 4, y + h + 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, BOX_COLOUR, 1,
                        cv2.LINE_AA)
        radius = max(1, round(w / 80))
        if f.points68 is not None:
            draw_contours(image, f.points68, thick)
            if not labels:  # the contours are the face; the 15 dots would only crowd them
                continue
        for name, (px, py) in zip(KEYPOINTS, f.keypoints):
            centre = (round(float(px)), round(float(py)))
            cv2.circle(image, centre, radius, POINT_COLOUR, -1)
            if labels:
                cv2.putText(image, name, (centre[0] + 3, centre[1] - 3), cv2.FONT_HERSHEY_PLAIN, 0.7,
                            TEXT_COLOUR, 1, cv2.LINE_AA)


def draw_contours(image: np.ndarray, points68: np.ndarray, thick: int = 1) -> None:
    """The 68 points as lines, part by part (jaw, brows, nose, eyes and lips as closed loops):
    a closed eye reads as a flat loop, an open mouth as two apart."""
    for indices, closed in IBUG68_CONTOURS.values():
        line = np.round(points68[list(indices)]).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [line], closed, POINT_COLOUR, thick, cv2.LINE_AA)


def draw_fps(image: np.ndarray, fps: float) -> None:
    """White on a dark band, readable on any background."""
    cv2.rectangle(image, (4, 4), (96, 26), (0, 0, 0), -1)
    cv2.putText(image, f"{fps:5.1f} fps", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT_COLOUR, 1)


class RollingFps:
    """Frames per second over the last ``window`` frames, by wall clock."""

    def __init__(self, window: int = 30, clock: Clock = now) -> None:
        self._stamps: deque[float] = deque(maxlen=window + 1)
        self._clock = clock

    def tick(self) -> float:
        self._stamps.append(self._clock())
        if len(self._stamps) < 2:
            return 0.0
        return (len(self._stamps) - 1) / max(self._stamps[-1] - self._stamps[0], 1e-9)
