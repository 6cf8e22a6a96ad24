"""Regenerate docs/face_state.png: fkd-live's overlay (keypoints, head axes, angles) on four frames
of a shared clip, with each face's expressions written under it.

    python docs/make_face_state.py [--clip ../shared/video/talking_head_512.mp4]

The frames are tracked as fkd-live tracks them (the Python API's tracker, smoothed keypoints,
each face's own neutral face), so the picture shows what the records say on those frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import fkd
from fkd.model.io.files import write_bytes_atomic
from fkd.realtime.outputs.draw import draw_faces
from fkd.realtime.outputs.records import Face

REPO = Path(__file__).resolve().parents[1]
TILE = 320


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", type=Path, default=REPO.parent / "shared" / "video" / "talking_head_512.mp4")
    ap.add_argument("--frames", type=int, nargs="+", default=[20, 70, 120, 170])
    args = ap.parse_args()
    cap = cv2.VideoCapture(str(args.clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    tiles = []
    with fkd.Landmarker().tracker(fps=fps) as tracker:
        for index in range(max(args.frames) + 1):
            ok, frame = cap.read()
            if not ok:
                break
            faces = tracker.update(frame)
            if index not in args.frames:
                continue
            drawn = [Face(f.id, f.box, f.keypoints, f.score, f.pose, f.expression) for f in faces]
            draw_faces(frame, drawn)
            scale = TILE / frame.shape[1]
            tile = cv2.resize(frame, (TILE, round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            for row, face in enumerate(faces[:1]):
                text = "  ".join(f"{k} {v:.2f}" for k, v in face.expression.items())
                bottom = tile.shape[0] - 18 * row
                cv2.rectangle(tile, (0, bottom - 18), (TILE, bottom), (0, 0, 0), -1)
                cv2.putText(tile, text, (4, tile.shape[0] - 5 - 18 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                            (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
    cap.release()
    sheet = np.hstack(tiles)
    target = REPO / "docs" / "face_state.png"
    ok, png = cv2.imencode(".png", sheet)
    assert ok
    write_bytes_atomic(target, png.tobytes())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
