"""The JSON face record shared by fkd-live and fkd-predict, and a JSON-lines writer.

Coordinates are pixels of the original image or frame (0-based pixel centres), rounded to
0.01 px; ``pandas.read_json(path, lines=True)`` reads either file.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from fkd.model.errors import FkdError
from fkd.model.io.files import atomic_path
from fkd.model.io.outputs import OutputLock
from fkd.model.io.paths import make_parent, shown
from fkd.model.schema import KEYPOINTS
from fkd.realtime.state.expression import record as expression_record
from fkd.realtime.state.pose import Pose


@dataclass
class Face:
    """One face in one frame: a stable id, its box (x, y, w, h), (15, 2) keypoints, the
    network's face score (0..1) for the crop they came from, and what the face is doing: its
    head pose and its expressions (fkd.realtime.state), where they were worked out. A 68-point
    model's face also has its (68, 2) iBUG points, and its keypoints are the 15 they give."""

    id: int
    box: tuple[int, int, int, int]
    keypoints: np.ndarray
    score: float
    pose: Pose | None = None
    expression: dict[str, float] = field(default_factory=dict)
    points68: np.ndarray | None = None


def face_record(face: Face) -> dict:
    """A face's JSON object. ``pose``, ``position`` and ``expression`` came after the first
    fields; a reader that knows only ``id``, ``box``, ``score`` and ``keypoints`` reads those
    as before (the version stays 1, as RECORD_VERSION's rule says)."""
    record = {
        "id": int(face.id),
        "box": [int(v) for v in face.box],
        "score": round(float(face.score), 4),
        "keypoints": {name: [round(float(x), 2), round(float(y), 2)]
                      for name, (x, y) in zip(KEYPOINTS, face.keypoints)},
    }
    pose = face.pose
    if pose is not None and pose.finite:  # JSON has no NaN: a fit that failed leaves the fields out
        record["pose"] = pose.record()
        record["position"] = [round(float(v), 1) for v in pose.position]
    if face.expression and all(math.isfinite(v) for v in face.expression.values()):
        record["expression"] = expression_record(face.expression)
    if face.points68 is not None:  # iBUG order, index 0 to 67 (docs/live.md has the picture)
        record["points68"] = [[round(float(x), 2), round(float(y), 2)] for x, y in face.points68]
    return record


#: The record format's version, first in every frame and photo record. It goes up only when a
#: field changes meaning or disappears (new fields may appear without it), so a consumer that
#: checks ``record["version"] == 1`` keeps working until the format breaks it.
RECORD_VERSION = 1


def frame_record(index: int, time: float, faces: list[Face]) -> dict:
    """One line of ``fkd-live --export`` (file, standard output or UDP datagram alike)."""
    return {"version": RECORD_VERSION, "frame": int(index), "time": round(float(time), 4),
            "faces": [face_record(f) for f in faces]}


def image_record(path: Path | str, width: int, height: int, faces: list[Face]) -> dict:
    """One line of ``fkd-predict --export``; ``path`` is the photo's path or URI, as the source named it."""
    return {"version": RECORD_VERSION, "image": str(path), "width": int(width), "height": int(height),
            "faces": [face_record(f) for f in faces]}


def error_record(path: Path | str, why: str) -> dict:
    """The line of ``fkd-predict --ray --export`` for a photo that could not be read: the same
    ``version`` and ``image``, and ``error`` (why) instead of its size and faces, so a shard names
    every photo of the run exactly once, good or bad."""
    return {"version": RECORD_VERSION, "image": str(path), "error": why}


def record_json(record: dict) -> str:
    """A record as one line of compact JSON (no newline): the same text in a file, a pipe or a datagram."""
    return json.dumps(record, separators=(",", ":"))


def keypoints_of(record: dict) -> np.ndarray:
    """A face record's keypoints back as a (15, 2) array, in KEYPOINTS order."""
    return np.array([record["keypoints"][name] for name in KEYPOINTS], dtype=np.float64)


class JsonLines:
    """One JSON object per line, written to a locked temporary that ``close`` renames into place.

    A second run writing the same file is refused (model/io/outputs.py); each line is flushed as
    written, so a run stopped by a signal finalises every line, and one killed with -9 leaves
    the previous file intact (its temporary is cleaned by the next run).
    """

    def __init__(self, path: Path, flag: str = "--export") -> None:
        self.path = Path(path)
        try:
            with contextlib.ExitStack() as stack:  # on any failure: temporary removed, lock released
                make_parent(self.path, flag)
                stack.enter_context(OutputLock(self.path, flag))
                tmp = stack.enter_context(atomic_path(self.path))
                self._file: IO[str] = stack.enter_context(tmp.open("w", encoding="utf-8"))
                self._stack = stack.pop_all()
        except OSError as e:
            raise FkdError(f"{flag} {shown(self.path)}: cannot write it ({e.strerror}).") from None
        self.lines = 0

    def write(self, record: dict) -> None:
        self._file.write(record_json(record) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        """Rename the complete file into place and release the lock (idempotent)."""
        self._stack.close()
