"""Tune the One Euro filter: keypoint jitter on a static head against lag on a moving one.

    python bench/jitter.py                       # all shared clips, the default parameters
    python bench/jitter.py --grid                # the search behind the defaults

Raw keypoints come from fkd-live's own tracker with smoothing off (smoothing never feeds
back into tracking, so filtering them afterwards is exactly what the live loop does).
- jitter: RMS frame-to-frame keypoint displacement (px) over the stillest 1-second stretch
  of each clip (the window where the face centre's path is shortest);
- lag: the delay (ms) that best aligns the filtered keypoints with the raw ones over the
  frames where the face moves faster than 0.5 face sides per second.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from fkd.model.artifact import Predictor
from fkd.realtime.sources.video import open_video
from fkd.realtime.tracking.pipeline import StageTimes, live_pipeline
from fkd.realtime.tracking.smooth import OneEuro, OneEuroParams

ROOT = Path(__file__).resolve().parents[1]


def raw_track(predictor: Predictor, clip: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, raw keypoints (T, 15, 2) and face sides of the first track, NaN where absent."""
    pipeline = live_pipeline(predictor, live=False, smoothing=None)
    tracker = pipeline.tracker
    times, points, sides = [], [], []
    with open_video(clip) as source:
        for frame in source:
            import cv2

            faces = pipeline.process(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY), frame.index, frame.time,
                                     StageTimes())
            track = next((t for t in tracker.tracks if t.id == 0), None)
            seen = track is not None and any(f.id == 0 for f in faces)
            times.append(frame.time)
            points.append(track.keypoints if seen else np.full((15, 2), np.nan))
            sides.append(track.square.side if seen else np.nan)
    tracker.close()
    return np.array(times), np.array(points), np.array(sides)


def smooth(times: np.ndarray, points: np.ndarray, sides: np.ndarray, params: OneEuroParams) -> np.ndarray:
    f = OneEuro(params)
    out = np.full_like(points, np.nan)
    for i, (t, p, s) in enumerate(zip(times, points, sides)):
        if np.isfinite(p).all():
            out[i] = f(p, t, scale=s)
        else:
            f.reset()
    return out


def still_window(points: np.ndarray, length: int) -> slice:
    centre = points.mean(1)
    step = np.linalg.norm(np.diff(centre, axis=0), axis=1)
    best, where = np.inf, 0
    for i in range(len(step) - length + 1):
        path = step[i:i + length - 1].sum()
        if np.isfinite(path) and path < best:
            best, where = path, i
    return slice(where, where + length)


def jitter(points: np.ndarray) -> float:
    d = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    return float(np.sqrt(np.nanmean(d**2)))


def lag_ms(times: np.ndarray, raw: np.ndarray, filt: np.ndarray, sides: np.ndarray) -> float:
    """Shift (ms) of ``filt`` behind ``raw`` that minimises their difference where the face moves."""
    dt = float(np.median(np.diff(times)))
    speed = np.linalg.norm(np.diff(raw.mean(1), axis=0), axis=1) / dt / sides[1:]
    moving = np.flatnonzero(speed > 0.5) + 1
    moving = moving[moving >= 8]
    if len(moving) < 5:
        return float("nan")
    errors = [np.nanmean(np.linalg.norm(filt[moving] - raw[moving - k], axis=-1)) for k in range(8)]
    k = int(np.argmin(errors))
    if 0 < k < 7:  # parabolic refinement between frames
        a, b, c = errors[k - 1], errors[k], errors[k + 1]
        k = k + 0.5 * (a - c) / max(a - 2 * b + c, 1e-9)
    return 1e3 * k * dt


def evaluate(tracks: dict, params: OneEuroParams) -> dict:
    rows = {}
    for name, (times, raw, sides) in tracks.items():
        filt = smooth(times, raw, sides, params)
        still = still_window(raw, max(10, int(round(1.0 / np.median(np.diff(times))))))
        rows[name] = (jitter(raw[still]), jitter(filt[still]), lag_ms(times, raw, filt, sides), still)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, nargs="*",
                        default=sorted((ROOT.parent / "shared" / "video").glob("*.mp4")))
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--grid", action="store_true")
    args = parser.parse_args()
    predictor = Predictor(args.weights, threads=1)
    tracks = {clip.name: raw_track(predictor, clip) for clip in args.clips}
    if args.grid:
        print("| min_cutoff | beta | jitter raw -> filtered (px), per clip | worst lag (ms) |")
        print("|---|---|---|---|")
        for mc, beta in itertools.product((0.1, 0.3, 0.5, 1.0, 2.0), (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)):
            rows = evaluate(tracks, OneEuroParams(min_cutoff=mc, beta=beta))
            cells = ", ".join(f"{r[0]:.2f}->{r[1]:.2f}" for r in rows.values())
            print(f"| {mc} | {beta} | {cells} | {np.nanmax([r[2] for r in rows.values()]):.0f} |")
        sys.exit(0)
    params = OneEuroParams()
    print(f"One Euro {params}")
    print("| clip | still stretch (frames) | jitter raw (px) | jitter filtered (px) | reduction "
          "| lag when moving (ms) |")
    print("|---|---|---|---|---|---|")
    for name, (raw_j, filt_j, lag, still) in evaluate(tracks, params).items():
        print(f"| {name} | {still.start}-{still.stop - 1} | {raw_j:.2f} | {filt_j:.2f} | {raw_j / filt_j:.1f}x "
              f"| {lag:.0f} |")


if __name__ == "__main__":
    main()
