"""How well the tracker's plausibility test tells a face in its crop from anything else.

    python bench/plausibility.py [--weights weights/fkd.pt]

fkd-live tracks a face by cropping it from its last keypoints; when the keypoints it then
gets are implausible (realtime/track.py: Plausibility), it drops that frame's keypoints and
asks the detector. This measures the layout fit (scale, shift, angle, residual against
Kaggle's mean layout) on
- faces: every tracked frame of the shared clips, and 300-W photos cropped from their
  labelled keypoints (as the tracker would) and from detector boxes (as a new track starts);
- not faces: random squares away from the face on clip frames and photos, and flat or
  noise crops, which is what a track sees when its face has gone;
and prints, for the bounds in use, the share of each kept as a face (for faces, the higher
the better; for the rest, the lower).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from fkd.model.artifact import Predictor
from fkd.model.crop import Square, crop_face, square_from_box, square_from_keypoints
from fkd.model.detect import FaceDetector
from fkd.model.schema import ibug68_to_kaggle15
from fkd.realtime.pipeline import LivePipeline, StageTimes
from fkd.realtime.sources import open_video
from fkd.realtime.track import Plausibility, Tracker, fit_layout, square_iou
from fkd.train.pts import find_pairs, read_pts

ROOT = Path(__file__).resolve().parents[1]
LOOSE = Plausibility(0.0, 1e9, 1e9, 1e9, 1e9)


def away_from(face: Square, shape: tuple[int, int], rng: np.random.Generator, n: int) -> list[Square]:
    """Up to n random squares of about the face's size that barely touch it."""
    out = []
    for _ in range(4 * n):
        side = int(face.side * rng.uniform(0.6, 1.3))
        x, y = (int(rng.integers(-side // 3, n - side // 2)) for n in (shape[1], shape[0]))
        sq = Square(x, y, side)
        if square_iou(sq, face) < 0.05:
            out.append(sq)
        if len(out) == n:
            break
    return out


def measure(predictor: Predictor, data: Path, clips: list[Path], photos: int, seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    fits: dict[str, list] = {"tracked clip frames": [], "photos, keypoint crop": [], "photos, detector crop": [],
                             "background squares": [], "flat and noise crops": []}
    detector = FaceDetector()
    for clip in clips:
        tracker = Tracker(detector, bounds=LOOSE, smoothing=None, background=False)
        pipeline = LivePipeline(predictor, tracker)
        for frame in open_video(clip):
            gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
            pipeline.process(gray, frame.time, StageTimes())
            fits["tracked clip frames"] += [t.last_fit for t in tracker.tracks if t.frames > 1]
            if frame.index % 10 == 0 and tracker.tracks:
                squares = away_from(tracker.tracks[0].square, gray.shape, rng, 8)
                if squares:
                    out = predictor(np.stack([crop_face(gray, s) for s in squares]))
                    fits["background squares"] += [fit_layout(p) for p in out]
        tracker.close()
    pairs = [p for folder in sorted(data.iterdir()) if folder.is_dir() for p in find_pairs(folder)]
    for i in rng.choice(len(pairs), min(photos, len(pairs)), replace=False):
        image, pts = pairs[i]
        gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
        truth = ibug68_to_kaggle15(read_pts(pts))
        face = square_from_keypoints(truth)
        squares = [face, *away_from(face, gray.shape, rng, 3)]
        boxes = [square_from_box(b) for b in detector.detect(gray)]
        hit = [b for b in boxes if square_iou(b, face) > 0.3]
        squares += hit[:1]
        out = predictor(np.stack([crop_face(gray, s) for s in squares]))
        fits["photos, keypoint crop"].append(fit_layout(out[0]))
        fits["background squares"] += [fit_layout(p) for p in out[1:len(squares) - len(hit[:1])]]
        if hit:
            fits["photos, detector crop"].append(fit_layout(out[-1]))
    flat = [np.full((96, 96), v, np.uint8) for v in (0, 40, 128, 200, 255)]
    noise = [rng.integers(0, 256, (96, 96)).astype(np.uint8) for _ in range(5)]
    fits["flat and noise crops"] = [fit_layout(p) for p in predictor(np.stack(flat + noise))]
    return fits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "300w")
    clips = sorted((ROOT.parent / "shared" / "video").glob("*.mp4"))
    parser.add_argument("--clips", type=Path, nargs="*", default=clips)
    parser.add_argument("--photos", type=int, default=400)
    args = parser.parse_args()
    fits = measure(Predictor(args.weights, threads=1), args.data, args.clips, args.photos)
    bounds = Plausibility()
    print(f"bounds: {bounds}\n")
    print("| crops | n | kept as a face | scale p1-p99 | shift p99 | residual p99 | angle p1-p99 |")
    print("|---|---|---|---|---|---|---|")
    for name, group in fits.items():
        a = np.array([(f.scale, f.shift, f.residual, f.angle) for f in group])
        # the tracker judges a crop from a detector box by its shape only, then re-crops (track.py)
        kept = np.mean([f.shape_ok(bounds) if "detector" in name else f.ok(bounds) for f in group])
        p = np.percentile
        print(f"| {name} | {len(a)} | {100 * kept:.1f} % | {p(a[:, 0], 1):.2f}-{p(a[:, 0], 99):.2f} "
              f"| {p(a[:, 1], 99):.3f} | {p(a[:, 2], 99):.3f} | {p(a[:, 3], 1):.0f}-{p(a[:, 3], 99):.0f} |")


if __name__ == "__main__":
    main()
