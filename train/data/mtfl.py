"""MTFL faces (../shared/data/mtfl): 5 hand-marked points each, as extra, masked training data.

``landmarks.csv`` names its points in Kaggle's terms already (left = the subject's left, on
the image's right), so the five map one-to-one onto Kaggle keypoints; the other ten stay
unlabelled and the masked loss ignores them. Each stored image is a small square around
one face; it goes through the same detector and crop as a 300-W photo, and where the
detector misses the face the crop comes from the points, jittered the way detector squares
scatter (``train/data/pts.py``'s fallback). (``haar_found`` in the list is whether the Haar cascade
that fkd used before YuNet found the face: 0 for 680, mostly turned heads.)

MTFL faces have no eye corners, so the 300-W NME (outer-corner normalised) is undefined on
them; ``eye_nme`` normalises by the eye-centre distance instead.
"""

from __future__ import annotations

import csv
import hashlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from fkd.model.crop import CONVENTION, Square, square_from_keypoints, to_crop
from fkd.model.detect import DETECTOR, FaceDetector
from fkd.model.errors import FkdError
from fkd.model.io.paths import read_image_bytes
from fkd.model.schema import INDEX, NUM_KEYPOINTS
from fkd.train.data.faceset import CONTEXT, FaceSet
from fkd.train.data.pts import Jitter, match_detection  # the match and the fallback's scatter model

#: An MTFL image is one 80 px face: the detector looks at it whole.
FACE_MIN_PX = 20

#: every MTFL face id starts with this; the loop tells 5-point faces from 15-point ones by it
AUX_PREFIX = "mtfl/"
#: landmarks.csv's point names, which are Kaggle's
POINTS: tuple[str, ...] = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_left_corner",
                           "mouth_right_corner")
LABELLED = np.array([INDEX[n] for n in POINTS])


def is_mtfl_folder(path: Path) -> bool:
    return (Path(path) / "landmarks.csv").is_file()


def read_landmarks(folder: Path) -> list[tuple[str, bool, np.ndarray]]:
    """(file, haar_found, (15, 2) points with the 5 labelled ones filled) per row of landmarks.csv."""
    path = Path(folder) / "landmarks.csv"
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise FkdError(f"{path}: cannot read the MTFL landmark list ({e.strerror}).") from None
    need = ["file", "haar_found"] + [f"{n}_{a}" for n in POINTS for a in "xy"]
    if not rows or any(k not in rows[0] for k in need):
        raise FkdError(f"{path}: not an MTFL landmarks.csv (expected the columns {', '.join(need)}).")
    out = []
    for row in rows:
        pts = np.zeros((NUM_KEYPOINTS, 2))
        try:
            for name in POINTS:
                pts[INDEX[name]] = float(row[f"{name}_x"]), float(row[f"{name}_y"])
        except ValueError:
            continue  # a row with a non-number is not a usable face
        if not np.isfinite(pts).all():
            continue
        out.append((row["file"], row["haar_found"].strip() == "1", pts))
    return out


def _mask() -> np.ndarray:
    m = np.zeros(NUM_KEYPOINTS, bool)
    m[LABELLED] = True
    return m


def _detect_chunk(args: tuple[str, list[tuple[str, bool, np.ndarray]]]):
    """In a worker: read each image, run the detector, return its matched square (or None)."""
    folder, rows = args
    detector = FaceDetector()
    out: list[tuple[str, tuple[int, int, int] | None, bool]] = []
    for file, _haar, pts in rows:
        gray = read_image_bytes(Path(folder) / file, cv2.IMREAD_GRAYSCALE)
        if gray is None:
            out.append((file, None, False))
            continue
        sq = match_detection(detector.detect(gray, min_face=FACE_MIN_PX), pts, _mask())
        out.append((file, None if sq is None else (sq.x0, sq.y0, sq.side), True))
    return out


def content_key(folder: Path) -> str:
    h = hashlib.sha1()
    h.update(repr((CONVENTION.as_dict(), DETECTOR.as_dict(), FACE_MIN_PX, CONTEXT, "mtfl-v2")).encode())
    h.update((Path(folder) / "landmarks.csv").read_bytes())
    for file, _, _ in read_landmarks(folder):
        h.update(file.encode())
        p = Path(folder) / file
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def load_mtfl(folder: Path, seed: int = 0, workers: int | None = None, progress=None) -> FaceSet:
    """Every usable MTFL face as a FaceSet of 96x96 crops with 5 of 15 points labelled."""
    folder = Path(folder)
    rows = read_landmarks(folder)
    if not rows:
        raise FkdError(f"{folder / 'landmarks.csv'}: no usable rows.")
    chunks = [(str(folder), rows[i:i + 256]) for i in range(0, len(rows), 256)]
    task = progress.add_task(f"detecting {folder.name}", total=len(rows), info="") if progress else None
    found: list = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(_detect_chunk, chunks):
            found.extend(part)
            if progress:
                progress.advance(task, len(part))
    mask = _mask()
    squares = {f: (Square(*s) if s else None) for f, s, ok in found if ok}
    unreadable = sum(1 for _, _, ok in found if not ok)
    jitter = Jitter.measure([(sq, square_from_keypoints(p, mask)) for f, _, p in rows
                             if (sq := squares.get(f)) is not None])
    rng = np.random.default_rng(seed)
    faces = FaceSet.empty()
    for file, _haar, pts in rows:
        if file not in squares:
            continue
        gray = read_image_bytes(folder / file, cv2.IMREAD_GRAYSCALE)
        if gray is None:  # readable a moment ago; vanished since
            continue
        sq = squares[file]
        fallback = sq is None
        if sq is None:
            sq = jitter.sample(square_from_keypoints(pts, mask), rng)
        crop_pts = np.where(mask[:, None], to_crop(pts, sq), 0.0)
        faces.add(AUX_PREFIX + str(Path(file).with_suffix("")), gray, sq, crop_pts, mask.copy(), fallback)
    return faces.finish(unreadable=unreadable)


def eye_errors(pred: np.ndarray, target: np.ndarray,
               mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Point errors over the eye-centre distance (N, 15), the points they count for (N, 15), each
    face's mean over those (N,), and which faces have both eye centres to normalise by (N,)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    mask = np.asarray(mask, bool)
    a, b = INDEX["left_eye_center"], INDEX["right_eye_center"]
    ok = mask[:, a] & mask[:, b]
    norm = np.linalg.norm(target[:, a] - target[:, b], axis=-1)
    ok &= norm > 1e-6
    err = np.linalg.norm(pred - target, axis=-1) / np.where(ok, norm, 1.0)[:, None]
    m = mask & ok[:, None]
    return err, m, (err * m).sum(1) / np.maximum(m.sum(1), 1), ok


def eye_nme(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict:
    """Mean point error over the eye-centre distance, overall and per MTFL point."""
    err, m, per_face, ok = eye_errors(pred, target, mask)
    return {"nme": float(per_face[ok].mean()) if ok.any() else float("nan"), "faces": int(ok.sum()),
            "norm": "eye-centre distance",
            "per_keypoint": {n: float(err[m[:, INDEX[n]], INDEX[n]].mean()) if m[:, INDEX[n]].any() else float("nan")
                             for n in POINTS}}
