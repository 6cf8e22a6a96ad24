"""Head pose and expressions from fkd's 15 keypoints, measured against MediaPipe's Face Landmarker (issue 32).

    /work/mpvenv/bin/python bench/mediapipe_face_state.py    # once: MediaPipe's answers, cached
    .venv/bin/python bench/face_state.py                     # the figures; never imports mediapipe

fkd runs as a user runs it (the tracker, keypoints smoothed by its One Euro filter) and each
track's faces go through ``FaceStates``, as the live loop will send them. Printed:

- per clip, the mean absolute difference of yaw, pitch and roll from MediaPipe's (its matrix
  decomposed as its README says); talking_head_512 was left out of bench/fit_face3d.py's fit;
- Pearson r of mouth_open with jawOpen, smile with the mean of mouthSmileLeft/Right, brow_raise
  with browInnerUp (per clip where MediaPipe's value varies at all, and over the one-face clips);
- each angle's jitter on still stretches (the median change between consecutive frames, over
  pairs where neither fkd's keypoints nor MediaPipe's nose tip moved more than 1 % of the face's
  height), beside MediaPipe's on the same pairs, with fkd's keypoints smoothed and raw;
- roll on 36 300-W photos turned by +-15 and +-30 degrees (photos without a turn as the zero);
- the cost of the fit and the expressions per face.
"""

from __future__ import annotations

import itertools
import time

import cv2
import numpy as np
from face_state_data import CLIPS, Track, mediapipe_cache, tracks
from turned_photos import TURNS, photo_list, turned

import fkd
from fkd.realtime.state.faces import FaceStates, face_state

ANGLES = ("yaw", "pitch", "roll")
PAIRS = (("mouth_open", "jawOpen"), ("smile", "mouthSmile"), ("brow_raise", "browInnerUp"))
ONE_FACE = CLIPS[:3]
HELD_OUT = "talking_head_512.mp4"
STILL = 0.01  # the most a face may move between two frames of a still stretch, as a fraction of its height


def reference_value(ref: dict, name: str) -> float:
    b = ref["blend"]
    return (b["mouthSmileLeft"] + b["mouthSmileRight"]) / 2 if name == "mouthSmile" else float(b[name])


def run_tracks(all_tracks: list[Track]) -> list[dict]:
    """Every track through FaceStates: per frame, fkd's angles and expressions beside MediaPipe's."""
    rows = []
    for track in all_tracks:
        states = FaceStates()
        for frame, points, ref in zip(track.frames, track.points, track.reference):
            pose, expression = states.update(track.face_id, points, track.width, track.height)
            rows.append({"clip": track.clip, "track": track.face_id, "frame": frame, "points": points,
                         "pose": pose, "expression": expression, "ref": ref})
    return rows


def pearson(a: list[float], b: list[float]) -> str:
    if len(a) < 10 or np.std(b) < 0.02 or np.std(a) == 0:
        return "  n/a"
    return f"{np.corrcoef(a, b)[0, 1]:5.2f}"


def print_angles(rows: list[dict]) -> None:
    print("Mean absolute difference from MediaPipe, degrees (targets: yaw 2.5, pitch 1.5, roll 0.6)")
    print(f"  {'clip':32s} {'faces':>5s} {'yaw':>6s} {'pitch':>6s} {'roll':>6s}   mean signed (yaw, pitch, roll)")
    for clip in (*CLIPS, "one-face clips"):
        chosen = [r for r in rows if r["ref"] is not None and (r["clip"] == clip or
                                                              (clip == "one-face clips" and r["clip"] in ONE_FACE))]
        d = np.array([[getattr(r["pose"], a) - r["ref"][a] for a in ANGLES] for r in chosen])
        mad, bias = np.abs(d).mean(axis=0), d.mean(axis=0)
        label = clip + (" (held out)" if clip == HELD_OUT else "")
        print(f"  {label:32s} {len(d):5d} {mad[0]:6.2f} {mad[1]:6.2f} {mad[2]:6.2f}   "
              f"({bias[0]:+.1f}, {bias[1]:+.1f}, {bias[2]:+.1f})")


def print_expressions(rows: list[dict]) -> None:
    print("Pearson r with MediaPipe's blendshapes (targets: mouth_open 0.8, smile 0.8, brow_raise 0.85;"
          " n/a where MediaPipe's value hardly moves, sd < 0.02)")
    print(f"  {'clip':32s} " + " ".join(f"{ours:>10s}" for ours, _ in PAIRS))
    for clip in (*CLIPS, "one-face clips"):
        chosen = [r for r in rows if r["ref"] is not None and (r["clip"] == clip or
                                                              (clip == "one-face clips" and r["clip"] in ONE_FACE))]
        cells = [pearson([r["expression"][ours] for r in chosen], [reference_value(r["ref"], theirs) for r in chosen])
                 for ours, theirs in PAIRS]
        label = clip + (" (held out)" if clip == HELD_OUT else "")
        print(f"  {label:32s} " + " ".join(f"{c:>10s}" for c in cells))


def _height(points: np.ndarray) -> float:
    return float(np.linalg.norm((points[11] + points[12]) / 2 - (points[0] + points[1]) / 2))


def jitter(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, int]:
    """Median |change| per frame of each angle, fkd's and MediaPipe's, over still consecutive pairs."""
    ours, theirs = [], []
    for a, b in itertools.pairwise(rows):
        if (a["clip"], a["track"], a["frame"] + 1) != (b["clip"], b["track"], b["frame"]):
            continue
        if a["ref"] is None or b["ref"] is None:
            continue
        size = _height(a["points"])
        moved = np.linalg.norm(b["points"].mean(axis=0) - a["points"].mean(axis=0)) / size
        nose = np.linalg.norm(np.subtract(b["ref"]["points"]["nose_tip"], a["ref"]["points"]["nose_tip"])) / size
        if moved > STILL or nose > STILL:
            continue
        ours.append([abs(getattr(b["pose"], x) - getattr(a["pose"], x)) for x in ANGLES])
        theirs.append([abs(b["ref"][x] - a["ref"][x]) for x in ANGLES])
    return np.median(ours, axis=0), np.median(theirs, axis=0), len(ours)


def print_jitter(smoothed: list[dict], raw: list[dict]) -> None:
    print("Jitter on still stretches, median degrees per frame (yaw, pitch, roll; target 0.4)")
    for clip in (*CLIPS, "all clips"):
        for label, rows in (("fkd, One Euro points", smoothed), ("fkd, raw points", raw)):
            chosen = [r for r in rows if clip in (r["clip"], "all clips")]
            ours, theirs, pairs = jitter(chosen)
            print(f"  {clip:30s} {label:21s} {pairs:5d} pairs: fkd {ours[0]:.2f} {ours[1]:.2f} {ours[2]:.2f}"
                  f"   MediaPipe {theirs[0]:.2f} {theirs[1]:.2f} {theirs[2]:.2f}")


def central_face(faces: list, width: int, height: int):  # type: ignore[no-untyped-def]
    centre = np.array([width / 2, height / 2])
    return min(faces, key=lambda f: float(np.linalg.norm(f.keypoints.mean(axis=0) - centre)), default=None)


def print_turned_photos(marker: fkd.Landmarker) -> None:
    reference = mediapipe_cache().get("photos", {})
    errors: dict[float, list[float]] = {t: [] for t in TURNS}
    theirs: dict[float, list[float]] = {t: [] for t in TURNS}
    for photo in photo_list():
        gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
        h, w = gray.shape
        rolls = {}
        for degrees in (0.0, *TURNS):
            face = central_face(marker.landmarks(turned(gray, degrees)), w, h)
            if face is not None:
                rolls[degrees] = face_state(face.keypoints, w, h)[0].roll
        looks = reference.get(f"{photo.parent.name}/{photo.name}", {})
        for degrees in TURNS:
            if 0.0 in rolls and degrees in rolls:
                errors[degrees].append(rolls[degrees] - rolls[0.0] - degrees)
            if looks.get("0.0") and looks.get(str(degrees)):
                theirs[degrees].append(looks[str(degrees)]["roll"] - looks["0.0"]["roll"] - degrees)
    print(f"Roll on {len(photo_list())} 300-W photos turned by known angles: mean |error|, degrees (target 1.0)")
    for degrees in TURNS:
        mp = f"{np.mean(np.abs(theirs[degrees])):.2f} ({len(theirs[degrees])} photos)" if theirs[degrees] else "n/a"
        print(f"  {degrees:+5.0f}: fkd {np.mean(np.abs(errors[degrees])):.2f} ({len(errors[degrees])} photos, "
              f"mean signed {np.mean(errors[degrees]):+.2f})   MediaPipe {mp}")
    everything = [e for v in errors.values() for e in v]
    mp_all = [e for v in theirs.values() for e in v]
    mp_mean = f"{np.mean(np.abs(mp_all)):.2f}" if mp_all else "n/a"
    print(f"  all:  fkd {np.mean(np.abs(everything)):.2f}   MediaPipe {mp_mean}")


def print_cost(all_tracks: list[Track]) -> None:
    faces = [(t.face_id, p, t.width, t.height) for t in all_tracks for p in t.points]
    states = FaceStates()
    start = time.perf_counter()
    for face_id, points, width, height in faces:
        states.update(face_id, points, width, height)
    per_face = (time.perf_counter() - start) / len(faces) * 1e3
    print(f"Cost of the fit and the expressions: {per_face:.2f} ms per face (FaceStates.update, {len(faces)} faces,"
          " one thread)")


def main() -> int:
    smoothed_tracks = tracks(smooth=True)
    smoothed = run_tracks(smoothed_tracks)
    raw = run_tracks(tracks(smooth=False))
    print_angles(smoothed)
    print()
    print_expressions(smoothed)
    print()
    print_jitter(smoothed, raw)
    print()
    print_turned_photos(fkd.Landmarker())
    print()
    print_cost(smoothed_tracks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
