"""MediaPipe Face Mesh (legacy solution) on a video, as fkd's speed yardstick.

Runs inside the separate virtual environment that bench/live_fps.py creates (mediapipe
0.10.21 pins numpy<2), so it imports nothing from fkd. Prints one JSON line per repeat:

    python bench/mediapipe_fps.py CLIP [--repeats 3] [--max-faces 4]
    python bench/mediapipe_fps.py CLIP --max-faces 16 --boxes   # one run, each frame's face boxes too

The loop is the same as fkd-live's headless loop minus drawing: decode, BGR->RGB, process.
The graph is started on a black frame first, so the timing excludes model loading, as
fkd's does. CPU time is the whole process's (all threads), per frame.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import mediapipe as mp
import numpy as np


def run(clip: str, max_faces: int = 1, boxes: bool = False) -> dict:
    cap = cv2.VideoCapture(clip)
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=max_faces, refine_landmarks=False)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    mesh.process(np.zeros((h, w, 3), np.uint8))
    frames = found = 0
    per_frame: list[list[list[int]]] = []
    start, cpu = time.perf_counter(), time.process_time()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        result = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        frames += 1
        found += bool(result.multi_face_landmarks)
        if boxes:  # each face's mesh bounds, in pixels: what bench/crowd_faces.py matches fkd's faces to
            per_frame.append([_bounds(face.landmark, w, h) for face in result.multi_face_landmarks or []])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    mesh.close()
    cap.release()
    out = {"clip": clip, "frames": frames, "frames_with_face": found, "seconds": seconds,
           "fps": frames / seconds, "cpu_ms_per_frame": 1e3 * cpu / frames, "mediapipe": mp.__version__}
    if boxes:
        out["boxes"] = per_frame
    return out


def _bounds(landmarks, w: int, h: int) -> list[int]:
    xs, ys = [p.x * w for p in landmarks], [p.y * h for p in landmarks]
    return [round(min(xs)), round(min(ys)), round(max(xs) - min(xs)), round(max(ys) - min(ys))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-faces", type=int, default=1)
    parser.add_argument("--boxes", action="store_true", help="also each frame's face boxes (x, y, w, h)")
    args = parser.parse_args()
    for _ in range(args.repeats):
        print(json.dumps(run(args.clip, args.max_faces, args.boxes)), flush=True)


if __name__ == "__main__":
    main()
