"""Pose and expressions for every tracked face of a live stream, and for single photos.

A live face keeps its previous pose (the next fit starts there, so the angles move continuously
and never jump at the +-180 degree wrap of roll) and its learnt neutral face. The keypoints reach
here already smoothed by the tracker's One Euro filter; bench/face_state.py measures that the
angles need no filter of their own (jitter on still stretches under 0.4 degrees per frame).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fkd.realtime.state.expression import NeutralFace, expressions_from, raw_measures
from fkd.realtime.state.pose import DEFAULT_FOV, Pose, PoseFitter, shared_camera_matrix


def face_state(points: np.ndarray, width: int, height: int, fov: float = DEFAULT_FOV,
               points68: np.ndarray | None = None) -> tuple[Pose, dict[str, float]]:
    """A photo's face: its pose and its expressions against the standard neutral face (no history);
    ``points68``, from a 68-point model, adds the eyes and measures the mouth by its inner lips."""
    pose = PoseFitter(fov).fit(points, width, height)
    raw = raw_measures(points, pose, shared_camera_matrix(width, height, fov), points68)
    return pose, expressions_from(raw)


@dataclass
class _Track:
    pose: Pose
    neutral: NeutralFace = field(default_factory=NeutralFace)


class FaceStates:
    """The state of each tracked face, by track id: feed each frame's faces to ``update``, then ``forget`` the gone."""

    def __init__(self, fov: float = DEFAULT_FOV) -> None:
        self.fov = fov
        self._fitter = PoseFitter(fov)
        self._tracks: dict[int, _Track] = {}

    def update(self, face_id: int, points: np.ndarray, width: int, height: int,
               points68: np.ndarray | None = None) -> tuple[Pose, dict[str, float]]:
        """This frame's pose and expressions of the face with track id ``face_id`` (points (15, 2)
        in pixels, and its 68 points from a 68-point model)."""
        track = self._tracks.get(face_id)
        pose = self._fitter.fit(points, width, height, guess=None if track is None else track.pose)
        if track is None:
            track = self._tracks[face_id] = _Track(pose)
        track.pose = pose
        raw = raw_measures(points, pose, shared_camera_matrix(width, height, self.fov), points68)
        track.neutral.update(raw)
        return pose, expressions_from(raw, track.neutral.values)

    def forget(self, live_ids: Iterable[int]) -> None:
        """Drop every face whose id is not in ``live_ids`` (its track ended)."""
        keep = set(live_ids)
        for face_id in [i for i in self._tracks if i not in keep]:
            del self._tracks[face_id]
