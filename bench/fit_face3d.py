"""Makes realtime/state/face3d.json: fkd's 15 points on a real-sized 3D head, the fit's weights and the neutral face.

How (run in fkd's venv after bench/mediapipe_face_state.py has filled its cache):

1. Start from MediaPipe's canonical face (Apache-2.0, ../shared/models/mediapipe/): each of fkd's
   points is the vertex, or the mean of the vertices, that matches its 300-W definition.
2. Triangulate each point afresh from fkd's own keypoints on the shared clips, taking MediaPipe's
   head pose on each frame as the camera's (linear least squares over all frames, as in
   multi-view triangulation). This puts fkd's points, which follow 300-W's definitions and not
   MediaPipe's, where they really are on a head posed as MediaPipe poses it, so the fit inherits
   no constant pitch offset. Points that expressions move (lips, mouth corners, brows) use only the
   frames MediaPipe calls neutral (jawOpen, smile and browInnerUp all low), so the 3D face is a
   neutral one. The result is made left-right symmetric (each point averaged with its partner's
   mirror image).
   Only faces within 12 degrees of the camera's axis take part: MediaPipe's matrix handles
   perspective differently from a pinhole fit (off-axis faces in three_people_lab disagree by
   up to 14 degrees of yaw), and letting them in skews the face.
3. The pose fit's weights (``WEIGHTS``) are set by hand and chosen on the clips used here: the
   eyes 1, the nose tip 2 (it alone carries yaw and pitch), the upper lip and mouth corners 0.5,
   the brows 0.3 and the lower lip 0.2, as expressions move them more and more. Measured the
   same way, weights from each point's reprojection miss gave 3 degrees more pitch error.

talking_head_512.mp4 is held out (``--hold-out``): bench/face_state.py reports it apart as the
figure on material the constants never saw. MediaPipe is used here only as a guide to make these
constants; fkd never imports it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from face_state_data import SHARED, Track, tracks

from fkd.model.schema import FLIP_PERMUTATION, KEYPOINTS
from fkd.realtime.state.pose import camera_matrix

OUT = Path(__file__).resolve().parents[1] / "realtime" / "state" / "face3d.json"
#: MediaPipe's canonical vertices for each of fkd's points (300-W definitions; means where 300-W's point lies between)
CANONICAL_VERTICES = {
    "left_eye_center": (362, 385, 387, 263, 373, 380),
    "right_eye_center": (133, 158, 160, 33, 144, 153),
    "left_eye_inner_corner": (362,),
    "left_eye_outer_corner": (263,),
    "right_eye_inner_corner": (133,),
    "right_eye_outer_corner": (33,),
    "left_eyebrow_inner_end": (336, 285),
    "left_eyebrow_outer_end": (300, 276),
    "right_eyebrow_inner_end": (107, 55),
    "right_eyebrow_outer_end": (70, 46),
    "nose_tip": (1,),
    "mouth_left_corner": (291,),
    "mouth_right_corner": (61,),
    "mouth_center_top_lip": (0,),
    "mouth_center_bottom_lip": (17,),
}
MOVING = {"mouth_left_corner", "mouth_right_corner", "mouth_center_top_lip", "mouth_center_bottom_lip",
          "left_eyebrow_inner_end", "left_eyebrow_outer_end", "right_eyebrow_inner_end", "right_eyebrow_outer_end"}
_FLIP_YZ = np.diag([1.0, -1.0, -1.0])
WEIGHTS = {"left_eye_center": 1.0, "right_eye_center": 1.0, "left_eye_inner_corner": 1.0, "left_eye_outer_corner": 1.0,
           "right_eye_inner_corner": 1.0, "right_eye_outer_corner": 1.0, "left_eyebrow_inner_end": 0.3,
           "left_eyebrow_outer_end": 0.3, "right_eyebrow_inner_end": 0.3, "right_eyebrow_outer_end": 0.3,
           "nose_tip": 2.0, "mouth_left_corner": 0.5, "mouth_right_corner": 0.5, "mouth_center_top_lip": 0.5,
           "mouth_center_bottom_lip": 0.2}
MAX_OFF_AXIS = 12.0  # degrees between the camera's axis and the ray through the face's centre


def canonical_points() -> np.ndarray:
    obj = SHARED / "models" / "mediapipe" / "canonical_face_model.obj"
    vertices = np.array([[float(v) for v in line.split()[1:4]] for line in obj.read_text().splitlines()
                         if line.startswith("v ")])
    return np.array([vertices[list(CANONICAL_VERTICES[name])].mean(axis=0) for name in KEYPOINTS])


def neutral(reference: dict) -> bool:
    b = reference["blend"]
    smile = (b["mouthSmileLeft"] + b["mouthSmileRight"]) / 2
    return b["jawOpen"] < 0.08 and smile < 0.25 and b["browInnerUp"] < 0.25


def views(all_tracks: list[Track]) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """(projection matrix 3x4 in OpenCV's camera frame, fkd's points, neutral?) for every frame MediaPipe posed."""
    out = []
    for track in all_tracks:
        camera = camera_matrix(track.width, track.height)
        for points, reference in zip(track.points, track.reference):
            if reference is None or off_axis(points, camera) > MAX_OFF_AXIS:
                continue
            m = np.asarray(reference["matrix"], np.float64)
            u, _, vt = np.linalg.svd(m[:3, :3])
            rotation = _FLIP_YZ @ (u @ vt)
            translation = _FLIP_YZ @ m[:3, 3]
            out.append((camera @ np.hstack([rotation, translation[:, None]]), points, neutral(reference)))
    return out


def off_axis(points: np.ndarray, camera: np.ndarray) -> float:
    """Degrees between the camera's axis and the ray through the keypoints' centre."""
    ray = np.linalg.solve(camera, np.array([*points.mean(axis=0), 1.0]))
    return float(np.degrees(np.arccos(ray[2] / np.linalg.norm(ray))))


def triangulate(observations: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The 3D point whose projections best meet the 2D points (linear least squares, DLT style)."""
    rows, rhs = [], []
    for p, uv in observations:
        for k, c in ((0, uv[0]), (1, uv[1])):
            row = c * p[2] - p[k]
            rows.append(row[:3])
            rhs.append(-row[3])
    return np.asarray(np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold-out", default="talking_head_512.mp4", help="clip left out of the fit ('' for none)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    used = [t for t in tracks() if t.clip != args.hold_out]
    seen = views(used)
    start = canonical_points()
    fitted = np.zeros_like(start)
    for i, name in enumerate(KEYPOINTS):
        chosen = [(p, pts) for p, pts, calm in seen if calm or name not in MOVING]
        fitted[i] = triangulate([(p, pts[i]) for p, pts in chosen])
    mirror = np.diag([-1.0, 1.0, 1.0])
    symmetric = (fitted + fitted[list(FLIP_PERMUTATION)] @ mirror) / 2
    weights = np.array([WEIGHTS[name] for name in KEYPOINTS])
    data = {
        "about": "fkd's 15 keypoints (300-W definitions) on a real-sized neutral head, cm. Head frame: x toward "
                 "the subject's left, y up, z out of the face; origin the head's centre (that of MediaPipe's "
                 "canonical face, about 7.5 cm behind the nose tip). Made by bench/fit_face3d.py from MediaPipe's "
                 "canonical face (Apache-2.0, LICENSE.mediapipe), re-triangulated from fkd's keypoints on the "
                 "shared clips with MediaPipe's head poses as the cameras; see that script's docstring.",
        "held_out": args.hold_out,
        "frames": len(seen),
        "neutral_frames": sum(calm for _, _, calm in seen),
        "points": {name: [round(float(v), 4) for v in symmetric[i]] for i, name in enumerate(KEYPOINTS)},
        "canonical": {name: [round(float(v), 4) for v in start[i]] for i, name in enumerate(KEYPOINTS)},
        "weights": {name: round(float(weights[i]), 4) for i, name in enumerate(KEYPOINTS)},
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    for i, name in enumerate(KEYPOINTS):
        moved = np.round(symmetric[i] - start[i], 2)
        print(f"{name:26s} {np.round(symmetric[i], 2)}  moved {moved}  weight {weights[i]:.2f}")
    print(f"{len(seen)} frames ({data['neutral_frames']} neutral); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
