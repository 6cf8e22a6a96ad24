"""A set of labelled face crops, whatever file format they came from.

Each face keeps two images: the exact 96x96 crop the live app would make (used for
validation and evaluation) and a wider context crop that augmentation warps from, so
rotations and shifts pull in real pixels rather than black corners.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fkd.model.crop import CROP_SIZE, Square, crop_face
from fkd.model.io.files import atomic_path
from fkd.model.schema import NUM_KEYPOINTS

#: iBUG's 300-W labels: every photo's points, of which the 15 Kaggle keypoints are a mapping
DENSE_POINTS = 68
#: context crops have this many times the crop's side, at the crop's resolution
CONTEXT = 1.5
CONTEXT_SIZE = int(round(CROP_SIZE * CONTEXT))


def no_dense(n: int) -> np.ndarray:
    """The 68 points of ``n`` faces whose source marks fewer (Kaggle, MTFL): all NaN."""
    return np.full((n, DENSE_POINTS, 2), np.nan, np.float32)


def context_affine(square: Square, context: Square) -> np.ndarray:
    """The 2x3 affine taking context-crop pixels to crop pixels (both squares in one frame)."""
    to_frame = context.side / CONTEXT_SIZE
    to_crop = CROP_SIZE / square.side
    a = to_frame * to_crop
    b = [((0.5 * to_frame - 0.5 + c0) - s0 + 0.5) * to_crop - 0.5 for c0, s0 in
         ((context.x0, square.x0), (context.y0, square.y0))]
    return np.array([[a, 0, b[0]], [0, a, b[1]]], dtype=np.float32)


def id_bucket(name: str) -> int:
    """The hash bucket (0..999) of a face id or source name: the one rule behind every split.

    ``FaceSet.split`` puts faces in validation or test by it, and the negative bank holds out a
    photo's non-face crops by the same bucket, so they are held out exactly when its face is.
    """
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 1000


@dataclass
class FaceSet:
    ids: list[str]
    crops: np.ndarray  # uint8 (N, 96, 96)
    context: np.ndarray  # uint8 (N, 144, 144)
    context_to_crop: np.ndarray  # float32 (N, 2, 3)
    points: np.ndarray  # float32 (N, 15, 2), crop pixels; 0 where unlabelled
    mask: np.ndarray  # bool (N, 15)
    fallback: np.ndarray  # bool (N,): crop came from the landmarks, not the detector
    #: float32 (N, 68, 2): all of a photo's iBUG points in crop pixels, NaN for faces labelled
    #: only with Kaggle's 15 or MTFL's 5; ``fkd-train --dense-weight`` learns them beside the 15
    dense: np.ndarray
    info: dict = field(default_factory=dict)

    # -- building -------------------------------------------------------------------
    @classmethod
    def empty(cls) -> _Builder:
        return _Builder()

    @classmethod
    def from_crops(cls, ids: list[str], crops: np.ndarray, points: np.ndarray, mask: np.ndarray) -> FaceSet:
        """Faces that are already 96x96 crops (Kaggle): context is the crop with edges repeated."""
        pad = (CONTEXT_SIZE - CROP_SIZE) // 2
        context = np.stack([cv2.copyMakeBorder(c, pad, pad, pad, pad, cv2.BORDER_REPLICATE) for c in crops]) \
            if len(crops) else np.zeros((0, CONTEXT_SIZE, CONTEXT_SIZE), np.uint8)
        affine = np.tile(np.array([[1, 0, -pad], [0, 1, -pad]], np.float32), (len(crops), 1, 1))
        return cls(list(ids), crops.astype(np.uint8), context, affine, np.nan_to_num(points).astype(np.float32),
                   mask.astype(bool), np.zeros(len(crops), bool), no_dense(len(crops)))

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> FaceSet:
        index = np.asarray(index, dtype=np.int64)
        return FaceSet([self.ids[i] for i in index], self.crops[index], self.context[index],
                       self.context_to_crop[index], self.points[index], self.mask[index],
                       self.fallback[index], self.dense[index], dict(self.info))

    @staticmethod
    def concat(sets: list[FaceSet]) -> FaceSet:
        if len(sets) == 1:
            return sets[0]
        info: dict = {}
        for s in sets:
            for k, v in s.info.items():
                info[k] = info.get(k, 0) + v if isinstance(v, (int, float)) else v
        arrays = {f: np.concatenate([getattr(s, f) for s in sets]) for f in
                  ("crops", "context", "context_to_crop", "points", "mask", "fallback", "dense")}
        return FaceSet(ids=[i for s in sets for i in s.ids], info=info, **arrays)

    def split(self, val_fraction: float = 0.1, test_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Train/val/test indices by a hash of each face's id: the same faces every run, on any machine.

        Each id falls in one of 1000 buckets. Validation is buckets below ``val_fraction`` x 1000
        (as since the first shipped weights, so validation figures stay comparable); the
        untouched test split is the next ``test_fraction`` x 1000 buckets, never trained on or
        selected on, and reported once at the end.
        """
        buckets = np.array([id_bucket(i) for i in self.ids], dtype=np.int64)
        v = int(round(val_fraction * 1000))
        t = v + int(round(test_fraction * 1000))
        val, test = buckets < v, (buckets >= v) & (buckets < t)
        return np.flatnonzero(~val & ~test), np.flatnonzero(val), np.flatnonzero(test)

    # -- storage --------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write atomically so a killed run never leaves half a cache behind."""
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
            np.savez(f, ids=np.array(self.ids), crops=self.crops, context=self.context,
                     context_to_crop=self.context_to_crop, points=self.points, mask=self.mask,
                     fallback=self.fallback, dense=self.dense,
                     info_keys=np.array(list(self.info.keys()), dtype=str),
                     info_values=np.array([float(v) for v in self.info.values()]))

    @classmethod
    def load(cls, path: Path) -> FaceSet:
        with np.load(path) as z:
            info = {k: float(v) for k, v in zip(z["info_keys"].tolist(), z["info_values"].tolist())}
            return cls(z["ids"].tolist(), z["crops"], z["context"], z["context_to_crop"], z["points"],
                       z["mask"], z["fallback"], z["dense"] if "dense" in z.files else no_dense(len(z["ids"])), info)


def face_row(name: str, gray: np.ndarray, square: Square, points: np.ndarray, mask: np.ndarray,
             fallback: bool, dense: np.ndarray | None = None) -> tuple:
    """One face's crop, context crop and labels, ready to stack (made in worker processes too);
    item 7 is the square, kept for measuring how detector boxes scatter, item 8 the 68 points
    in crop pixels (NaN when the source has none)."""
    context = square.scaled(CONTEXT)
    dense = no_dense(1)[0] if dense is None else dense
    return (name, crop_face(gray, square), crop_face(gray, context, CONTEXT_SIZE),
            context_affine(square, context), points, mask, fallback, (square.x0, square.y0, square.side),
            np.asarray(dense, np.float32))


class _Builder:
    """Collects faces one at a time, then stacks them into a FaceSet."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, name: str, gray: np.ndarray, square: Square, points: np.ndarray, mask: np.ndarray,
            fallback: bool) -> None:
        self.rows.append(face_row(name, gray, square, points, mask, fallback))

    def finish(self, **info: float) -> FaceSet:
        n = len(self.rows)
        if n == 0:
            z = np.zeros
            return FaceSet([], z((0, CROP_SIZE, CROP_SIZE), np.uint8), z((0, CONTEXT_SIZE, CONTEXT_SIZE), np.uint8),
                           z((0, 2, 3), np.float32), z((0, NUM_KEYPOINTS, 2), np.float32),
                           z((0, NUM_KEYPOINTS), bool), z(0, bool), no_dense(0), dict(info))
        cols = list(zip(*self.rows))
        fallback = np.array(cols[6], bool)
        info = {"faces": n, "fallbacks": int(fallback.sum()), **info}
        return FaceSet(list(cols[0]), np.stack(cols[1]), np.stack(cols[2]), np.stack(cols[3]),
                       np.stack(cols[4]).astype(np.float32), np.stack(cols[5]), fallback, np.stack(cols[8]), info)
