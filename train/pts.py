"""Folders of photos with iBUG 68-point ``.pts`` files -> cropped training faces.

Each photo goes through the live app's detector and crop, so training sees what the app
will show the network. Where the detector misses the labelled face, a box is derived from
the landmarks and jittered the way detector boxes scatter, and the fallback is counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fkd.model.crop import (
    CONVENTION,
    Square,
    square_from_box,
    square_from_center,
    square_from_keypoints,
    to_crop,
)
from fkd.model.detect import DETECTOR, FaceDetector
from fkd.model.errors import FkdError
from fkd.model.schema import ibug68_to_kaggle15
from fkd.train.faceset import CONTEXT, FaceSet


def read_pts(path: Path) -> np.ndarray:
    """Read a 300-W ``.pts`` file as (68, 2) 0-based pixel centres."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise FkdError(f"{path}: cannot read the landmark file ({e.strerror}).") from None
    try:
        body = text[text.index("{") + 1 : text.index("}")]
        values = np.array(body.split(), dtype=np.float64)
    except ValueError:
        raise FkdError(f"{path}: not a .pts landmark file (expected numbers between '{{' and '}}').") from None
    if values.size != 136:
        raise FkdError(f"{path}: expected 68 points, found {values.size / 2:g}.")
    return values.reshape(68, 2) - 1.0  # the format is 1-based


def find_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """Every ``<name>.pts`` under ``folder`` with its image beside it, in a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FkdError(f"{folder}: no such folder.")
    pairs = []
    for pts in sorted(folder.rglob("*.pts")):
        for ext in (".jpg", ".png", ".jpeg", ".bmp"):
            img = pts.with_suffix(ext)
            if img.exists():
                pairs.append((img, pts))
                break
    if not pairs:
        raise FkdError(f"{folder}: no image with a .pts file beside it.")
    return pairs


def match_detection(boxes: list, keypoints: np.ndarray) -> Square | None:
    """The detector's square for the labelled face, or None if no box fits it.

    A box fits when its crop square is centred within a quarter side of the square the
    landmarks ask for and has 0.7-1.4 times its side.
    """
    want = square_from_keypoints(keypoints)
    wc = np.array(want.centre)
    best, best_d = None, np.inf
    for box in boxes:
        sq = square_from_box(box)
        ratio = sq.side / want.side
        d = np.linalg.norm(np.array(sq.centre) - wc) / want.side
        if 0.7 <= ratio <= 1.4 and d < 0.25 and d < best_d:
            best, best_d = sq, d
    return best


@dataclass
class Jitter:
    """How detector squares scatter around the landmark square: centre (in sides) and log-scale."""

    centre_mean: np.ndarray
    centre_std: np.ndarray
    log_side_mean: float
    log_side_std: float

    @classmethod
    def measure(cls, pairs: list[tuple[Square, Square]]) -> Jitter:
        if len(pairs) < 10:  # too few to measure; a modest default
            return cls(np.zeros(2), np.full(2, 0.04), 0.0, 0.06)
        rel = np.array([
            ((d.centre[0] - w.centre[0]) / w.side, (d.centre[1] - w.centre[1]) / w.side, np.log(d.side / w.side))
            for d, w in pairs
        ])
        return cls(rel[:, :2].mean(0), rel[:, :2].std(0), float(rel[:, 2].mean()), float(rel[:, 2].std()))

    def sample(self, want: Square, rng: np.random.Generator) -> Square:
        c = self.centre_mean + rng.normal(size=2) * self.centre_std
        side = want.side * np.exp(self.log_side_mean + rng.normal() * self.log_side_std)
        cx, cy = np.array(want.centre) + c * want.side
        return square_from_center(cx, cy, max(8, side))


def _content_key(pairs: list[tuple[Path, Path]], root: Path) -> str:
    h = hashlib.sha1()
    h.update(repr((CONVENTION.as_dict(), DETECTOR.as_dict(), CONTEXT, "pts-v1")).encode())
    for img, pts in pairs:
        h.update(str(img.relative_to(root)).encode())
        h.update(img.read_bytes())
        h.update(pts.read_bytes())
    return h.hexdigest()[:16]


def load_pts_folder(folder: Path, cache_dir: Path | None = None, seed: int = 0, progress=None) -> FaceSet:
    """Crop every labelled face of ``folder``; cached as .npz keyed by the files' content."""
    folder = Path(folder)
    pairs = find_pairs(folder)
    key = _content_key(pairs, folder)
    cache = Path(cache_dir) / f"pts-{folder.name}-{key}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        try:
            return FaceSet.load(cache)
        except Exception:
            pass  # a damaged cache is rebuilt below
    detector = FaceDetector()
    rng = np.random.default_rng(seed)
    records, missed, unreadable = [], [], 0
    task = progress.add_task(f"cropping {folder.name}", total=len(pairs), info="") if progress else None
    for img_path, pts_path in pairs:
        if progress:
            progress.advance(task)
        kp = ibug68_to_kaggle15(read_pts(pts_path))
        gray = cv2.imread(str(img_path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            unreadable += 1
            continue
        sq = match_detection(detector.detect(gray), kp)
        name = f"{folder.name}/{img_path.relative_to(folder).with_suffix('')}"
        if sq is None:
            missed.append((name, gray, kp))
        else:
            records.append((name, gray, kp, sq, False))
    if not records and not missed:
        raise FkdError(f"{folder}: none of the {len(pairs)} images could be read.")
    jitter = Jitter.measure([(r[3], square_from_keypoints(r[2])) for r in records])
    for name, gray, kp in missed:
        records.append((name, gray, kp, jitter.sample(square_from_keypoints(kp), rng), True))
    builder = FaceSet.empty()
    for name, gray, kp, sq, fallback in records:
        builder.add(name, gray, sq, to_crop(kp, sq), np.ones(len(kp), bool), fallback)
    faces = builder.finish(unreadable=unreadable)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        faces.save(cache)
    return faces


