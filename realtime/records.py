"""The JSON face record shared by fkd-live and fkd-predict, and a JSON-lines writer.

Coordinates are pixels of the original image or frame (0-based pixel centres), rounded to
0.01 px; ``pandas.read_json(path, lines=True)`` reads either file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from fkd.model.errors import FkdError
from fkd.model.schema import KEYPOINTS


@dataclass
class Face:
    """One face in one frame: a stable id, its box (x, y, w, h), (15, 2) keypoints and the
    network's face score (0..1) for the crop they came from."""

    id: int
    box: tuple[int, int, int, int]
    keypoints: np.ndarray
    score: float


def face_record(face: Face) -> dict:
    return {
        "id": int(face.id),
        "box": [int(v) for v in face.box],
        "score": round(float(face.score), 4),
        "keypoints": {name: [round(float(x), 2), round(float(y), 2)]
                      for name, (x, y) in zip(KEYPOINTS, face.keypoints)},
    }


def frame_record(index: int, time: float, faces: list[Face]) -> dict:
    """One line of ``fkd-live --export``."""
    return {"frame": int(index), "time": round(float(time), 4), "faces": [face_record(f) for f in faces]}


def image_record(path: Path, width: int, height: int, faces: list[Face]) -> dict:
    """One line of ``fkd-predict --json``."""
    return {"image": str(path), "width": int(width), "height": int(height), "faces": [face_record(f) for f in faces]}


def keypoints_of(record: dict) -> np.ndarray:
    """A face record's keypoints back as a (15, 2) array, in KEYPOINTS order."""
    return np.array([record["keypoints"][name] for name in KEYPOINTS], dtype=np.float64)


class JsonLines:
    """Appends one JSON object per line; the file is complete up to the last line written."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = self.path.open("w", encoding="utf-8")
        except OSError as e:
            raise FkdError(f"cannot write {self.path} ({e.strerror}).") from None

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()
