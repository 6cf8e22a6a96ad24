"""What bench/face_state.py and bench/fit_face3d.py share: fkd's keypoints on the shared clips, MediaPipe's cache.

fkd runs here as a user runs it (``fkd.Landmarker().tracker(fps=...)``, keypoints smoothed by the
tracker's One Euro filter unless asked otherwise), once per clip; its keypoints are cached under
.cache/ so that iterating on the 3D face or the formulas does not rerun the network. MediaPipe's
figures come from the cache bench/mediapipe_face_state.py writes (it runs in a venv of its own).
A face of fkd's is matched to MediaPipe's face whose nose tip is nearest, within a third of the
fkd face's eye-to-mouth height.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

import fkd
from fkd.model.schema import INDEX

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CACHE = ROOT / ".cache"
MEDIAPIPE_CACHE = CACHE / "mediapipe" / "face_state.json"
CLIPS = ("talking_head_512.mp4", "webcam_320x240.mp4", "webcam_640x360_backlit.mp4", "three_people_lab_640x480.mp4")


@dataclass
class Track:
    """One fkd face through a clip, with MediaPipe's matching face where there was one."""

    clip: str
    face_id: int
    width: int
    height: int
    fps: float
    frames: list[int]
    points: list[np.ndarray]  # (15, 2) each
    reference: list[dict | None]  # MediaPipe's face on the same frame, or None


def fkd_on_clip(marker: fkd.Landmarker, name: str, smooth: bool) -> dict:
    """fkd's tracked faces on every frame of one clip: {"fps", "width", "height", "frames": [[{id, points}]]}."""
    capture = cv2.VideoCapture(str(SHARED / "video" / name))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    frames: list[list[dict]] = []
    with marker.tracker(fps=fps, smooth=smooth) as tracker:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            height, width = frame.shape[:2]
            frames.append([{"id": f.id, "points": np.round(f.keypoints, 3).tolist()} for f in tracker.update(frame)])
    capture.release()
    return {"fps": fps, "width": width, "height": height, "frames": frames}


def fkd_clips(smooth: bool = True) -> dict[str, dict]:
    """fkd on every clip, from the cache when the weights have not changed since it was made."""
    weights = ROOT / "weights" / "fkd.onnx"
    path = CACHE / "face_state" / f"fkd_clips_{'smooth' if smooth else 'raw'}.json"
    stamp = f"{weights.stat().st_size}:{weights.stat().st_mtime_ns}"
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("stamp") == stamp:
            return cached["clips"]
    marker = fkd.Landmarker()
    clips = {name: fkd_on_clip(marker, name, smooth) for name in CLIPS}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stamp": stamp, "clips": clips}))
    return clips


def mediapipe_cache() -> dict:
    if not MEDIAPIPE_CACHE.is_file():
        raise SystemExit(f"no {MEDIAPIPE_CACHE}: run bench/mediapipe_face_state.py in MediaPipe's venv first")
    return json.loads(MEDIAPIPE_CACHE.read_text())


def _match(points: np.ndarray, faces: list[dict]) -> dict | None:
    nose = points[INDEX["nose_tip"]]
    eyes = (points[INDEX["left_eye_center"]] + points[INDEX["right_eye_center"]]) / 2
    mouth = (points[INDEX["mouth_center_top_lip"]] + points[INDEX["mouth_center_bottom_lip"]]) / 2
    limit = np.linalg.norm(mouth - eyes) / 3
    best = min(faces, key=lambda f: float(np.linalg.norm(np.asarray(f["points"]["nose_tip"]) - nose)), default=None)
    if best is None or np.linalg.norm(np.asarray(best["points"]["nose_tip"]) - nose) > limit:
        return None
    return best


def tracks(smooth: bool = True, min_frames: int = 20) -> list[Track]:
    """fkd's tracks on every clip (at least ``min_frames`` long), each frame paired with MediaPipe's face."""
    reference = mediapipe_cache()["clips"]
    out: list[Track] = []
    for name, clip in fkd_clips(smooth).items():
        found: dict[int, Track] = {}
        for index, faces in enumerate(clip["frames"]):
            ref_faces = reference[name]["frames"][index] if index < len(reference[name]["frames"]) else []
            for face in faces:
                track = found.setdefault(face["id"], Track(name, face["id"], clip["width"], clip["height"],
                                                           clip["fps"], [], [], []))
                points = np.asarray(face["points"], np.float64)
                track.frames.append(index)
                track.points.append(points)
                track.reference.append(_match(points, ref_faces))
        out.extend(t for t in found.values() if len(t.frames) >= min_frames)
    return out
