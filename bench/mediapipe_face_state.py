"""MediaPipe's head pose and blendshapes on the shared clips and turned photos: the reference for bench/face_state.py.

MediaPipe is never a dependency of fkd, not even of its tests: it pins numpy<2, so it runs from a
venv of its own, and this script writes what it sees to a JSON cache that bench/face_state.py
reads with fkd's own venv. Run it once (a minute or two on two cores):

    python3 -m venv /work/mpvenv && /work/mpvenv/bin/pip install mediapipe==0.10.21
    /work/mpvenv/bin/python bench/mediapipe_face_state.py      # -> .cache/mediapipe/face_state.json

Angles follow ../shared/models/mediapipe/README.md: the matrix's 3x3 part made orthonormal, then
R = Ry(yaw) Rx(-pitch) Rz(-roll), in image terms. The photos are 300-W crops turned by known
angles (the same list bench/face_state.py turns), in IMAGE mode.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np
from mediapipe.tasks import python as mp_python
from mediapipe.tasks.python import vision
from turned_photos import TURNS, photo_list, turned  # this folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "mediapipe" / "face_landmarker.task"
CLIPS = ("talking_head_512.mp4", "webcam_320x240.mp4", "webcam_640x360_backlit.mp4", "three_people_lab_640x480.mp4")
BLENDSHAPES = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp", "eyeBlinkLeft", "eyeBlinkRight",
               "browOuterUpLeft", "browOuterUpRight", "mouthFunnel", "mouthPucker")
#: a few of MediaPipe's 478 points, for matching its faces to fkd's (by the nose tip) and for checks
POINTS = {"nose_tip": 1, "right_eye_outer": 33, "right_eye_inner": 133, "left_eye_inner": 362, "left_eye_outer": 263,
          "mouth_right": 61, "mouth_left": 291, "lip_top": 0, "lip_bottom": 17}


def angles(matrix: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from MediaPipe's facial transformation matrix (the README's decomposition)."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, np.float64)[:3, :3])
    r = u @ vt
    yaw = np.degrees(np.arctan2(r[0, 2], r[2, 2]))
    pitch = np.degrees(np.arcsin(np.clip(r[1, 2], -1.0, 1.0)))
    roll = np.degrees(np.arctan2(-r[1, 0], r[1, 1]))
    return float(yaw), float(pitch), float(roll)


def faces_of(result: object, width: int, height: int) -> list[dict[str, object]]:
    """One dict per face MediaPipe found: angles, its matrix, the chosen blendshapes and points."""
    faces = []
    for i, landmarks in enumerate(result.face_landmarks):  # type: ignore[attr-defined]
        matrix = np.asarray(result.facial_transformation_matrixes[i])  # type: ignore[attr-defined]
        shapes = {c.category_name: float(c.score) for c in result.face_blendshapes[i]}  # type: ignore[attr-defined]
        yaw, pitch, roll = angles(matrix)
        faces.append({
            "yaw": round(yaw, 3), "pitch": round(pitch, 3), "roll": round(roll, 3),
            "matrix": np.round(matrix, 5).tolist(),
            "blend": {k: round(shapes.get(k, 0.0), 4) for k in BLENDSHAPES},
            "points": {k: [round(landmarks[j].x * width, 2), round(landmarks[j].y * height, 2)]
                       for k, j in POINTS.items()},
        })
    return faces


def landmarker(video: bool, faces: int) -> vision.FaceLandmarker:
    options = vision.FaceLandmarkerOptions(
        base_options=mp_python.BaseOptions(model_asset_path=str(MODEL)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_faces=faces, output_face_blendshapes=True, output_facial_transformation_matrixes=True)
    return vision.FaceLandmarker.create_from_options(options)


def run_clip(path: Path) -> dict[str, object]:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    frames: list[list[dict[str, object]]] = []
    with landmarker(video=True, faces=4) as marker:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            result = marker.detect_for_video(image, int(round(len(frames) * 1000.0 / fps)))
            frames.append(faces_of(result, w, h))
    capture.release()
    return {"fps": fps, "width": w, "height": h, "frames": frames}


def run_photos() -> dict[str, object]:
    out: dict[str, object] = {}
    with landmarker(video=False, faces=1) as marker:
        for photo in photo_list():
            gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
            looks = {}
            for degrees in (0.0, *TURNS):
                rgb = cv2.cvtColor(turned(gray, degrees), cv2.COLOR_GRAY2RGB)
                result = marker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
                found = faces_of(result, rgb.shape[1], rgb.shape[0])
                looks[str(degrees)] = found[0] if found else None
            out[f"{photo.parent.name}/{photo.name}"] = looks
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "mediapipe" / "face_state.json")
    args = parser.parse_args()
    if not MODEL.is_file():
        print(f"no {MODEL}: the shared folder is missing", file=sys.stderr)
        return 1
    cache = {"model": MODEL.name, "mediapipe": mp.__version__,
             "clips": {name: run_clip(SHARED / "video" / name) for name in CLIPS}, "photos": run_photos()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(cache))
    for name, clip in cache["clips"].items():
        frames = clip["frames"]
        print(f"{name}: {len(frames)} frames, {sum(len(f) for f in frames)} faces")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
