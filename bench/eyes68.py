"""The 68-point model's eyes and inner lips against MediaPipe's blendshapes, on the shared clips.

    /work/mpvenv/bin/python bench/mediapipe_face_state.py   # once: MediaPipe's answers, cached under .cache/
    python bench/eyes68.py                                    # then this (no MediaPipe import)

fkd runs as a user runs it (``fkd.Landmarker(points=68).tracker(fps=...)``); each of its faces is
paired with MediaPipe's face on the same frame by the nose tip, as bench/face_state.py pairs
them. Printed per clip: Pearson r of the mean of ``eye_open_left`` and ``eye_open_right`` with
1 minus the mean of MediaPipe's ``eyeBlinkLeft`` and ``eyeBlinkRight``, of ``mouth_open`` with
``jawOpen``, and how often each side reads a blink (fkd's ``blink``; MediaPipe's mean blink
over 0.5). A clip on which MediaPipe's value hardly moves (standard deviation under 0.02) has
no meaningful r, and says so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

import fkd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MEDIAPIPE_CACHE = ROOT / ".cache" / "mediapipe" / "face_state.json"
CLIPS = ("talking_head_512.mp4", "webcam_320x240.mp4", "webcam_640x360_backlit.mp4", "three_people_lab_640x480.mp4")


def paired(marker: fkd.Landmarker, clip: str, reference: list[list[dict]]) -> list[tuple[dict, dict]]:
    """(fkd's expression, MediaPipe's blendshapes) for every fkd face MediaPipe also found."""
    capture = cv2.VideoCapture(str(SHARED / "video" / clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    pairs = []
    with marker.tracker(fps=fps) as tracker:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            theirs = reference[index] if index < len(reference) else []
            for face in tracker.update(frame):
                nose = np.asarray(face.point("nose_tip"))
                eyes = (np.asarray(face.point("left_eye_center")) + np.asarray(face.point("right_eye_center"))) / 2
                limit = np.linalg.norm(np.asarray(face.point("mouth_center_top_lip")) - eyes) / 2
                near = [f for f in theirs if np.linalg.norm(np.asarray(f["points"]["nose_tip"]) - nose) < limit]
                if near and face.expression:
                    pairs.append((face.expression, near[0]["blend"]))
            index += 1
    capture.release()
    return pairs


def pearson(a: list[float], b: list[float]) -> str:
    if len(a) < 10 or np.std(b) < 0.02 or np.std(a) < 1e-9:
        return "n/a (flat)"
    return f"{np.corrcoef(a, b)[0, 1]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=list(CLIPS))
    args = parser.parse_args()
    if not MEDIAPIPE_CACHE.is_file():
        raise SystemExit(f"no {MEDIAPIPE_CACHE}: run bench/mediapipe_face_state.py in MediaPipe's venv first")
    reference = json.loads(MEDIAPIPE_CACHE.read_text())["clips"]
    marker = fkd.Landmarker(points=68)
    print("| clip | faces | r eyes open / 1 - eyeBlink | r mouth_open / jawOpen | fkd blink frames "
          "| MediaPipe blink frames |")
    print("|---|---|---|---|---|---|")
    everything: list[tuple[dict, dict]] = []
    for clip in args.clips:
        pairs = paired(marker, clip, reference[clip]["frames"])
        everything += pairs
        report(clip, pairs)
    report("all clips", everything)


def report(name: str, pairs: list[tuple[dict, dict]]) -> None:
    ours_eyes = [(e["eye_open_left"] + e["eye_open_right"]) / 2 for e, _ in pairs]
    theirs_eyes = [1 - (b["eyeBlinkLeft"] + b["eyeBlinkRight"]) / 2 for _, b in pairs]
    ours_mouth = [e["mouth_open"] for e, _ in pairs]
    theirs_mouth = [b["jawOpen"] for _, b in pairs]
    blinks = sum(e["blink"] for e, _ in pairs)
    their_blinks = sum(1 for v in theirs_eyes if v < 0.5)
    print(f"| {name} | {len(pairs)} | {pearson(ours_eyes, theirs_eyes)} | {pearson(ours_mouth, theirs_mouth)} "
          f"| {blinks:.0f} | {their_blinks} |")


if __name__ == "__main__":
    main()
