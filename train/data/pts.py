"""Folders of photos with iBUG 68-point ``.pts`` files -> cropped training faces.

Each photo goes through the live app's detector and crop, so training sees what the app
will show the network. Where the detector misses the labelled face, a box is derived from
the landmarks and jittered the way detector boxes scatter, and the fallback is counted.
"""

from __future__ import annotations

import hashlib
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fkd.model.crop import (
    CONVENTION,
    Square,
    square_from_center,
    to_crop,
)
from fkd.model.detect import DETECTOR, Detection, FaceDetector
from fkd.model.errors import FkdError
from fkd.model.io.paths import is_regular_file, read_image_bytes, shown
from fkd.model.points import KAGGLE15, PointSet, point_set
from fkd.model.schema import ibug68_to_kaggle15
from fkd.train.data.faceset import CONTEXT, FaceSet, face_row


def read_pts(path: Path) -> np.ndarray:
    """Read a 300-W ``.pts`` file as (68, 2) 0-based pixel centres."""
    try:
        text = Path(path).read_bytes().decode("latin-1")  # numbers are ASCII; other bytes must not crash
    except OSError as e:
        raise FkdError(f"{path}: cannot read the landmark file ({e.strerror}).") from None
    try:
        body = text[text.index("{") + 1 : text.index("}")]
        values = np.array(body.split(), dtype=np.float64)
    except ValueError:
        raise FkdError(f"{path}: not a .pts landmark file (expected numbers between '{{' and '}}').") from None
    if values.size != 136:
        raise FkdError(f"{path}: expected 68 points, found {values.size / 2:g}.")
    if not np.isfinite(values).all():
        raise FkdError(f"{path}: a coordinate is NaN or infinite.")
    return values.reshape(68, 2) - 1.0  # the format is 1-based


def plausible(points: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Landmarks within the image grown by its own size on every side (faces may leave the frame a bit;
    a coordinate of 1e9 is a broken label, and would blow up the crop and the loss)."""
    h, w = shape[:2]
    return bool(np.isfinite(points).all() and (points[:, 0] > -w).all() and (points[:, 0] < 2 * w).all()
                and (points[:, 1] > -h).all() and (points[:, 1] < 2 * h).all())


def face_id(folder: Path, image: Path) -> str:
    """A 300-W face's id, ``<folder name>/<image path in it, no suffix>``: what the split's hash
    buckets (``train.faceset.id_bucket``), the crop cache and the negatives' hold-out key on."""
    return f"{folder.name}/{image.relative_to(folder).with_suffix('')}"


def find_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """Every ``<name>.pts`` under ``folder`` with its image beside it, in a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FkdError(f"{folder}: no such folder.")
    pairs = []
    for pts in sorted(folder.rglob("*.pts")):
        if not is_regular_file(pts):  # a FIFO would block the reader forever
            continue
        for ext in (".jpg", ".png", ".jpeg", ".bmp"):
            img = pts.with_suffix(ext)
            if is_regular_file(img):
                pairs.append((img, pts))
                break
    if not pairs:
        raise FkdError(f"{folder}: no image with a .pts file beside it.")
    return pairs


def match_detection(found: list[Detection], keypoints: np.ndarray, mask: np.ndarray | None = None,
                    points: PointSet = KAGGLE15) -> Square | None:
    """The detector's first square for the labelled face, or None if no detection fits it.

    A detection fits when its crop square (framed for ``points``' crop) is centred within a
    quarter side of the square the labelled keypoints (those in ``mask``, of that set) ask for
    and has 0.7-1.4 times its side.
    """
    want = points.square_from_points(keypoints, mask)
    wc = np.array(want.centre)
    best, best_d = None, np.inf
    for det in found:
        sq = points.square_from_landmarks(det.landmarks)
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


def _content_key(pairs: list[tuple[Path, Path]], root: Path, points: PointSet = KAGGLE15) -> str:
    h = hashlib.sha1()
    h.update(repr((CONVENTION.as_dict(), DETECTOR.as_dict(), FACE_MIN_PX, CONTEXT, "pts-v3")).encode())
    if points is not KAGGLE15:  # the 15's key stays as it was, so their caches stay valid
        h.update(repr((points.name, points.convention.as_dict(), points.template.round(3).tolist())).encode())
    for img, pts in pairs:
        h.update(str(img.relative_to(root)).encode())
        h.update(img.read_bytes())
        h.update(pts.read_bytes())
    return h.hexdigest()[:16]


def find_labelled_face(job: tuple[Path, Path, Path] | tuple[Path, Path, Path, int]
                       ) -> tuple[str, np.ndarray | None, np.ndarray | None, Square | None, bool | None]:
    """Decode one photo and find its labelled face with the detector. Returns (name, the 68
    points, the grey photo, the crop square or None when the detector missed, readable: True,
    False for an unreadable image, None for a broken label or landmarks far outside it). A
    fourth item in the job names the point count whose crop is framed (15 unless given)."""
    img_path, pts_path, folder = job[:3]
    points = point_set(job[3]) if len(job) > 3 else KAGGLE15
    name = face_id(folder, img_path)
    try:
        points68 = read_pts(pts_path)
    except FkdError:  # garbage or NaN: a broken label drops its face, counted, like a far-off one
        return name, None, None, None, None
    gray = read_image_bytes(img_path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        return name, points68, None, None, False
    if not plausible(points68, gray.shape):
        return name, points68, gray, None, None
    found = _worker_detector().detect(gray, min_face=FACE_MIN_PX)
    return name, points68, gray, match_detection(found, labelled(points68, points), points=points), True


def labelled(points68: np.ndarray, points: PointSet) -> np.ndarray:
    """A face's labels in ``points``' set: the 68 themselves, or the 15 Kaggle keypoints they give."""
    return points68 if points.count == 68 else ibug68_to_kaggle15(points68)


def detect_pair(job: tuple[Path, Path, Path] | tuple[Path, Path, Path, int]):
    """In a worker process: ``find_labelled_face``, then cut the crops. Returns (name, the 68
    points, finished row or None when the detector missed, readable as there)."""
    name, points68, gray, sq, readable = find_labelled_face(job)
    if sq is None or gray is None or points68 is None:
        return name, points68, None, readable
    return name, points68, _labelled_row(name, gray, sq, points68, False, job[3] if len(job) > 3 else 15), readable


def _labelled_row(name: str, gray: np.ndarray, square: Square, points68: np.ndarray, fallback: bool,
                  count: int = 15) -> tuple:
    """A face's row with its labels (the 15 keypoints, or the 68 for a 68-point crop) and all
    68 points, in the crop's pixels."""
    kp = labelled(points68, point_set(count))
    return face_row(name, gray, square, to_crop(kp, square), np.ones(len(kp), bool), fallback,
                    to_crop(points68, square))


#: A labelled 300-W face is at least this many pixels across (its crop is 2x the face, >= 160 px),
#: so the detector can look for it in a shrunk photo.
FACE_MIN_PX = 60

_DETECTOR: FaceDetector | None = None


def _worker_detector() -> FaceDetector:
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = FaceDetector()
    return _DETECTOR


def load_pts_folder(folder: Path, cache_dir: Path | None = None, seed: int = 0, progress=None,
                    workers: int | None = None, points: int = 15) -> FaceSet:
    """Crop every labelled face of ``folder``, photos decoded and detected by a process pool;
    cached as .npz keyed by the files' content when ``cache_dir`` is given. ``points`` picks the
    crop and the labels: 15 (Kaggle's keypoints on their crop) or 68 (the whole face)."""
    folder = Path(folder)
    pairs = find_pairs(folder)
    ps = point_set(points)
    cache = None
    if cache_dir:
        cache = Path(cache_dir) / f"pts-{folder.name}-{_content_key(pairs, folder, ps)}.npz"
        if cache.exists():
            try:
                return FaceSet.load(cache)
            except Exception:
                pass  # a damaged cache is rebuilt below
    rng = np.random.default_rng(seed)
    rows, missed, unreadable, implausible = [], [], 0, 0
    first_bad = ""
    task = progress.add_task(f"cropping {folder.name}", total=len(pairs), info="") if progress else None
    jobs = [(img, pts, folder) if points == 15 else (img, pts, folder, points) for img, pts in pairs]
    workers = workers or min(8, os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _InProcess() as pool:
        for name, points68, row, readable in pool.map(detect_pair, jobs, chunksize=16):
            if progress:
                progress.advance(task)
            if readable is None:
                implausible += 1
                first_bad = first_bad or name.split("/", 1)[1] + ".pts"
            elif not readable:
                unreadable += 1
            elif row is None:
                missed.append((name, points68))
            else:
                rows.append((row, labelled(points68, ps)))
    if implausible:  # one line for the folder, however many faces: a count, not a flood
        print(f"warning: {shown(folder)}: dropped {implausible} face(s) whose .pts file is not 68 numbers, "
              f"holds NaN, or lies far outside the image (the first: {shown(first_bad)}).", file=sys.stderr)
    if not rows and not missed:
        raise FkdError(f"{shown(folder)}: none of the {len(pairs)} images could be read with usable landmarks.")
    jitter = Jitter.measure([(Square(*_square_of(row)), ps.square_from_points(kp)) for row, kp in rows])
    builder = FaceSet.empty()
    for row, _ in rows:
        builder.rows.append(row)
    images = {face_id(folder, img): img for img, _ in pairs}
    for name, points68 in missed:
        sq = jitter.sample(ps.square_from_points(labelled(points68, ps)), rng)
        gray = read_image_bytes(images[name], cv2.IMREAD_GRAYSCALE)
        if gray is None:  # read a moment ago: the file changed or went away since
            raise FkdError(f"{shown(images[name])}: could not be read again.")
        builder.rows.append(_labelled_row(name, gray, sq, points68, True, points))
    faces = builder.finish(unreadable=unreadable, implausible=implausible)
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            faces.save(cache)
        except OSError as e:  # a read-only or full cache folder costs speed next time, not this run
            print(f"warning: cannot write the cache {shown(cache.parent)} ({e.strerror}); going on without it.",
                  file=sys.stderr)
    return faces


def _square_of(row: tuple) -> tuple[int, int, int]:
    return row[7]


class _InProcess:
    """A stand-in for the pool when one worker is asked for (no processes spawned)."""

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn, jobs, chunksize: int = 1):
        return map(fn, jobs)
