"""Crops that hold no face: what the face-score head learns to say "not a face" to.

The score head only learns what it is shown. The live app hands the network crops of
background when a detector fires on a curtain, crops that drift off a face while tracking,
crops of hair, necks and shirts just around a face, and crops reaching off the frame's edge.
So the bank is cut from the same shared photos and clips the faces come from, in those
places, plus synthetic flat, gradient and noise patches:

- ``background``: windows of the photos and clip frames away from every face;
- ``shifted``: the face's own crop square moved by half a side or more;
- ``scaled_small`` / ``scaled_large``: the face's square at x0.4 (a nose or an eye) or x2.5
  (a small face amid its surroundings);
- ``hair`` (above the brows), ``skin`` (cheek and neck patches: the shared data has no
  labelled hands, so bare skin stands in for them), ``clothing`` (below the chin);
- ``edge``: windows reaching past the frame, padded black exactly as
  ``fkd.model.crop.crop_face`` pads;
- ``flat``, ``gradient``, ``noise``: synthetic.

Held out (never trained on): negatives from every photo whose face id falls in the
held-out hash buckets (< 200 of 1000; the same buckets ``FaceSet.split`` uses, so a held-out
face's own background is held out with it), synthetic patches whose name falls there, and
the whole clip ``HELD_OUT_CLIP``. Buckets < 100 are validation; buckets 100..199 and the
held-out clip are the test part, which only the final figures read.

The bank is built once (about a minute on two cores) and cached as one .npz whose name is a
hash of every source file's content and of the build settings, so a changed photo or clip
rebuilds it and nothing else does.

For the training loop (H5)::

    bank = build_negative_bank(shared_root, cache_dir, seed=0, progress=progress)
    rng = np.random.default_rng(seed)
    negatives = bank.draw(rng, n)          # (n, 96, 96) uint8 from the training part, flipped and
                                           # brightness/contrast-jittered; label them 0, mask keypoints off
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fkd.model.crop import CROP_SIZE, Square, crop_face, square_from_center, square_from_keypoints
from fkd.model.detect import DETECTOR, DetectorConfig, FaceDetector
from fkd.model.errors import FkdError
from fkd.model.io.files import atomic_path
from fkd.model.schema import ibug68_to_kaggle15
from fkd.train.data.faceset import id_bucket
from fkd.train.data.pts import face_id, find_pairs, read_pts

KINDS: tuple[str, ...] = ("background", "shifted", "scaled_small", "scaled_large", "hair", "skin", "clothing",
                          "edge", "flat", "gradient", "noise")
#: the clip whose every negative is held out for the test figures (a backlit head of dark hair)
HELD_OUT_CLIP = "webcam_640x360_backlit"
#: face-id buckets (of 1000) held out: < 100 validation, 100..199 the untouched test split
VAL_BUCKETS = 100
HELD_OUT_BUCKETS = 200
#: frames sampled evenly from each clip
FRAMES_PER_CLIP = 40
#: synthetic patches of each synthetic kind
SYNTHETIC_PER_KIND = 1200
#: bump when the recipe below changes, so old caches are not reused
RECIPE = "negatives-v5"



@dataclass
class NegativeBank:
    """M negative crops with what they are and where they came from."""

    crops: np.ndarray  # uint8 (M, 96, 96)
    kinds: np.ndarray  # str (M,), one of KINDS
    sources: np.ndarray  # str (M,): "<folder>/<photo>" (the face id), "video/<clip>" or "synthetic/<kind>/<i>"
    held_out: np.ndarray  # bool (M,): never train on these
    test: np.ndarray  # bool (M,): held out for the final figures (a subset of held_out); held_out & ~test = validation
    key: str = ""

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def train_index(self) -> np.ndarray:
        return np.flatnonzero(~self.held_out)

    @property
    def val_index(self) -> np.ndarray:
        return np.flatnonzero(self.held_out & ~self.test)

    @property
    def test_index(self) -> np.ndarray:
        return np.flatnonzero(self.test)

    def counts(self, index: np.ndarray | None = None) -> dict[str, int]:
        """How many crops of each kind (all, or those at ``index``)."""
        kinds = self.kinds if index is None else self.kinds[index]
        return {k: int((kinds == k).sum()) for k in KINDS}

    def draw(self, rng: np.random.Generator, n: int, augment: bool = True) -> np.ndarray:
        """``n`` training negatives (uint8 (n, 96, 96)), each randomly mirrored and re-lit.

        Faces are augmented photometrically in training; negatives get the same kind of
        change, so brightness or contrast alone never tells the head which is which.
        """
        index = rng.choice(self.train_index, size=n)
        crops = self.crops[index]
        if not augment:
            return crops.copy()
        flip = rng.random(n) < 0.5
        crops = np.where(flip[:, None, None], crops[:, :, ::-1], crops).astype(np.float32)
        gain = rng.uniform(0.7, 1.3, size=(n, 1, 1))
        mean = crops.mean(axis=(1, 2), keepdims=True)
        crops = (crops - mean) * gain + mean + rng.uniform(-25, 25, size=(n, 1, 1))
        return np.clip(np.rint(crops), 0, 255).astype(np.uint8)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, crops=self.crops, kinds=self.kinds, sources=self.sources, held_out=self.held_out,
                     test=self.test, key=np.array(self.key))

    @classmethod
    def load(cls, path: Path) -> NegativeBank:
        with np.load(path) as z:
            return cls(z["crops"], z["kinds"], z["sources"], z["held_out"], z["test"], str(z["key"]))


# -- where the sources are ---------------------------------------------------------------------

def photo_pairs(shared_root: Path) -> list[tuple[str, Path, Path]]:
    """(face id, image, .pts) for every 300-W photo under ``shared_root/data/300w/*/``."""
    root = Path(shared_root) / "data" / "300w"
    out = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir() and any(p.glob("*.pts"))):
        for img, pts in find_pairs(folder):
            out.append((face_id(folder, img), img, pts))
    return out


def clip_paths(shared_root: Path) -> list[Path]:
    return sorted((Path(shared_root) / "video").glob("*.mp4"))


def content_key(photos: list[tuple[str, Path, Path]], clips: list[Path], settings: tuple) -> str:
    """A hash of every source file's bytes and of the recipe and settings: the cache's name."""
    h = hashlib.sha1()
    h.update(repr((RECIPE, VAL_BUCKETS, HELD_OUT_BUCKETS, CROP_SIZE, settings)).encode())
    for name, img, pts in photos:
        h.update(name.encode())
        h.update(img.read_bytes())
        h.update(pts.read_bytes())
    for clip in clips:
        h.update(clip.name.encode())
        h.update(clip.read_bytes())
    return h.hexdigest()[:16]


# -- geometry ------------------------------------------------------------------------------------

def _overlap(a: Square, b: Square) -> float:
    """The share of ``a``'s area that lies inside ``b``."""
    w = min(a.x0 + a.side, b.x0 + b.side) - max(a.x0, b.x0)
    h = min(a.y0 + a.side, b.y0 + b.side) - max(a.y0, b.y0)
    return max(w, 0) * max(h, 0) / float(a.side * a.side)


def _inside(sq: Square, shape: tuple[int, ...]) -> float:
    """The share of the square that lies inside an image of ``shape``."""
    h, w = shape[:2]
    inside_w = max(min(sq.x0 + sq.side, w) - max(sq.x0, 0), 0)
    inside_h = max(min(sq.y0 + sq.side, h) - max(sq.y0, 0), 0)
    return inside_w * inside_h / float(sq.side * sq.side)


def _clear_of(sq: Square, faces: list[Square], limit: float = 0.1) -> bool:
    """True when neither the window holds much face nor a face much of the window."""
    return all(_overlap(sq, f) <= limit and _overlap(f, sq) <= limit for f in faces)


def _random_window(rng: np.random.Generator, shape: tuple[int, ...], side: float, outside: tuple[float, float]
                   ) -> Square:
    """A square of ``side`` whose share outside the image is roughly in ``outside``."""
    h, w = shape[:2]
    s = max(8, int(round(side)))
    if outside[1] <= 0:
        return Square(int(rng.integers(0, max(w - s, 0) + 1)), int(rng.integers(0, max(h - s, 0) + 1)), s)
    # hang over one or two edges by a random fraction of the side
    x0 = int(rng.integers(0, max(w - s, 0) + 1))
    y0 = int(rng.integers(0, max(h - s, 0) + 1))
    out = rng.uniform(*outside)
    edge = rng.integers(4)
    if edge == 0:
        x0 = -int(out * s)
    elif edge == 1:
        x0 = w - s + int(out * s)
    elif edge == 2:
        y0 = -int(out * s)
    else:
        y0 = h - s + int(out * s)
    return Square(x0, y0, s)


# -- cutting negatives around one face -----------------------------------------------------------

Crop = tuple[str, np.ndarray]  # (kind, 96x96 crop)


def _mostly_black(crop: np.ndarray) -> bool:
    """A 300-W photo's black fill (or the frame's outside) rather than the texture asked for."""
    return bool((crop < 3).mean() > 0.4)


def _around_face(gray: np.ndarray, face: Square, others: list[Square], rng: np.random.Generator,
                 brow_y: float, chin_y: float, cheeks: list[tuple[float, float]], large: int,
                 cloth: tuple[float, float], cloths: int) -> Iterator[Crop]:
    """Shifted, rescaled, hair, skin and clothing crops around one face in one image.

    ``large`` is how many x2.5 crops to cut: in a 300-W photo (2x the face) they are mostly
    black fill, so photos give few and clip frames, with real surroundings, give more. For the
    same reason photos give small clothing windows (``cloth``: sides, in face sides) just
    under the chin, and frames larger ones.
    """
    s = face.side
    cx, cy = face.centre
    for _ in range(3):
        a = rng.uniform(0, 2 * np.pi)
        d = s * rng.uniform(0.5, 0.9)
        sq = square_from_center(cx + d * np.cos(a), cy + d * np.sin(a), s * np.exp(rng.normal(0, 0.1)))
        if _clear_of(sq, others, 0.3):
            yield "shifted", crop_face(gray, sq)
    yield "scaled_small", crop_face(gray, square_from_center(cx + rng.normal(0, 0.12) * s, cy + rng.normal(0, 0.12) * s,
                                                             0.4 * s * np.exp(rng.normal(0, 0.08))))
    for _ in range(large):
        yield "scaled_large", crop_face(gray, square_from_center(cx + rng.normal(0, 0.08) * s,
                                                                 cy + rng.normal(0, 0.08) * s,
                                                                 2.5 * s * np.exp(rng.normal(0, 0.08))))
    side = s * rng.uniform(0.4, 0.7)
    hair = square_from_center(cx + rng.normal(0, 0.12) * s, brow_y - rng.uniform(0.0, 0.15) * s - side / 2, side)
    if _inside(hair, gray.shape) >= 0.6 and not _mostly_black(crop := crop_face(gray, hair)):
        yield "hair", crop
    for j in rng.permutation(len(cheeks))[:2]:
        px, py = cheeks[j]
        skin = square_from_center(px + rng.normal(0, 0.03) * s, py + rng.normal(0, 0.03) * s,
                                  s * rng.uniform(0.2, 0.32))
        if _inside(skin, gray.shape) >= 0.8 and not _mostly_black(crop := crop_face(gray, skin)):
            yield "skin", crop
    for _ in range(cloths):
        side = s * rng.uniform(*cloth)
        sq = square_from_center(cx + rng.normal(0, 0.2) * s, chin_y + rng.uniform(0.02, 0.25) * s + side / 2, side)
        if _inside(sq, gray.shape) >= 0.6 and _clear_of(sq, others) and not _mostly_black(crop := crop_face(gray, sq)):
            yield "clothing", crop


def _background(gray: np.ndarray, faces: list[Square], rng: np.random.Generator, n: int, side: tuple[float, float],
                kind: str = "background", outside: tuple[float, float] = (0.0, 0.0)) -> Iterator[Crop]:
    """Up to ``n`` windows of the image clear of every face (a few tries each)."""
    short = min(gray.shape[:2])
    for _ in range(n):
        for _try in range(12):
            sq = _random_window(rng, gray.shape, short * rng.uniform(*side), outside)
            if not _clear_of(sq, faces):
                continue
            crop = crop_face(gray, sq)
            if kind == "background" and _mostly_black(crop):
                continue  # mostly the black fill of a 300-W crop: the edge kind covers that
            yield kind, crop
            break


def _photo_negatives(gray: np.ndarray, kp68: np.ndarray, found: list[Square], rng: np.random.Generator
                     ) -> Iterator[Crop]:
    """Negatives of one 300-W photo; ``found`` are the detector's candidates (the labelled face among them)."""
    face = square_from_keypoints(ibug68_to_kaggle15(kp68))
    others = [sq for sq in found if _overlap(sq, face) < 0.5 and _overlap(face, sq) < 0.5]
    everyone = [face.scaled(1.2), *[o.scaled(1.2) for o in others]]
    yield from _background(gray, everyone, rng, 5, (0.15, 0.45))
    yield from _background(gray, everyone, rng, 1, (0.2, 0.5), kind="edge", outside=(0.2, 0.6))
    cheeks = [tuple(0.55 * kp68[j] + 0.45 * kp68[n]) for j, n in ((2, 31), (14, 35))]
    cheeks.append((float(kp68[8, 0]), float(kp68[8, 1] + 0.12 * face.side)))  # the neck under the chin
    yield from _around_face(gray, face, others, rng, float(kp68[17:27, 1].min()), float(kp68[8, 1]), cheeks,
                            large=int(rng.random() < 0.35), cloth=(0.3, 0.6), cloths=1)


def _frame_negatives(gray: np.ndarray, found: list[Square], confident: list[Square], rng: np.random.Generator
                     ) -> Iterator[Crop]:
    avoid = [f.scaled(1.3) for f in found]
    yield from _background(gray, avoid, rng, 8, (0.12, 0.5))
    yield from _background(gray, avoid, rng, 3, (0.15, 0.5), kind="edge", outside=(0.2, 0.6))
    for face in confident[:3]:
        s = face.side
        cy = face.centre[1]
        others = [f for f in avoid if _overlap(f, face) < 0.3]
        # the crop square's brows sit about 0.2 sides above its centre, its chin about 0.4 below
        yield from _around_face(gray, face, others, rng, cy - 0.2 * s, cy + 0.42 * s, [], large=2, cloth=(0.5, 1.2),
                                cloths=3)


# -- synthetic ----------------------------------------------------------------------------------

def _synthetic(kind: str, rng: np.random.Generator) -> np.ndarray:
    n = CROP_SIZE
    img: np.ndarray
    if kind == "flat":
        img = np.full((n, n), rng.uniform(0, 255)) + rng.normal(0, rng.uniform(0, 3), (n, n))
    elif kind == "gradient":
        yy, xx = np.mgrid[0:n, 0:n] / (n - 1) - 0.5
        if rng.random() < 0.7:
            a = rng.uniform(0, 2 * np.pi)
            t = xx * np.cos(a) + yy * np.sin(a)
        else:
            t = np.hypot(xx - rng.uniform(-0.5, 0.5), yy - rng.uniform(-0.5, 0.5))
        lo, hi = sorted(rng.uniform(0, 255, 2))
        img = lo + (hi - lo) * (t - t.min()) / max(np.ptp(t), 1e-6) + rng.normal(0, 2, (n, n))
    else:
        noise = rng.normal(0, 1, (n, n)).astype(np.float32)
        sigma = float(rng.choice([0.0, 1.0, 2.5, 5.0]))
        if sigma:
            noise = np.asarray(cv2.GaussianBlur(noise, (0, 0), sigma), np.float32)
        noise /= max(float(noise.std()), 1e-6)
        img = rng.uniform(40, 215) + noise * rng.uniform(10, 60)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# -- the build ----------------------------------------------------------------------------------

class _FaceSearch:
    """A generous face search with the app's own detector: anything that might be a face is
    kept clear of.

    YuNet's proposals under its own threshold are searched too. They are not harvested as
    "the detector's false boxes": on the shared photos and clips most of them are real faces
    (blurred passers-by, masked or dark faces), which the score head must keep
    (bench/RESULTS.md, "YuNet's unsure proposals are faces").
    """

    #: YuNet's score for a proposal to be kept clear of, and for a face to count as sure
    LOW, SURE = 0.2, DETECTOR.score

    def __init__(self) -> None:
        self.detector = FaceDetector(DetectorConfig(score=self.LOW))

    def find(self, image: np.ndarray, min_face: int = 20, max_side: int | None = 640
             ) -> tuple[list[Square], list[Square]]:
        """(every face that might be there, the sure faces largest first), as crop squares in
        frame pixels. ``min_face`` (frame pixels) and ``max_side`` set how small a face is
        sought (``model.detect.detection_scale``)."""
        found = self.detector.detect(image, max_side=max_side, min_face=min_face)
        sure = sorted((d.square for d in found if d.score >= self.SURE), key=lambda q: -q.side)
        return [d.square for d in found], sure


def _read_frames(clip: Path, count: int) -> list[np.ndarray]:
    """``count`` grey frames spread evenly over the clip (read straight through, no seeking)."""
    cap = cv2.VideoCapture(str(clip))
    if not cap.isOpened():
        raise FkdError(f"{clip}: cannot open the video.")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    want = set(np.linspace(0, max(total - 1, 0), count).astype(int).tolist())
    frames, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i in want:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        i += 1
    cap.release()
    return frames


def _source_rng(seed: int, name: str) -> np.random.Generator:
    """Each source its own stream, so one changed file changes only its own crops."""
    return np.random.default_rng([seed, int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)])


def build_negative_bank(shared_root: Path, cache_dir: Path | None, seed: int = 0, progress=None,
                        held_out_clip: str = HELD_OUT_CLIP, frames_per_clip: int = FRAMES_PER_CLIP,
                        synthetic_per_kind: int = SYNTHETIC_PER_KIND) -> NegativeBank:
    """The negatives of ``shared_root`` (data/300w/*/ photos, video/*.mp4 clips), from cache when unchanged.

    ``progress`` is a rich Progress (or None); the build adds one task per stage.
    ``held_out_clip`` is a clip's file name without ``.mp4``; the other settings are for
    tests, which build a small bank.
    """
    shared_root = Path(shared_root)
    photos = photo_pairs(shared_root) if (shared_root / "data" / "300w").is_dir() else []
    clips = clip_paths(shared_root)
    if not photos and not clips:
        raise FkdError(f"{shared_root}: has no 300-W photos under data/300w and no clips under video.")
    key = content_key(photos, clips, (seed, held_out_clip, frames_per_clip, synthetic_per_kind))
    cache = Path(cache_dir) / f"negatives-{key}.npz" if cache_dir is not None else None
    if cache is not None and cache.exists():
        try:
            return NegativeBank.load(cache)
        except Exception:
            pass  # a damaged cache is rebuilt below
    kinds: list[str] = []
    crops: list[np.ndarray] = []
    sources: list[str] = []
    held: list[bool] = []
    test: list[bool] = []

    def keep(items: Iterator[Crop], source: str, bucket: int) -> None:
        for kind, crop in items:
            kinds.append(kind)
            crops.append(crop)
            sources.append(source)
            held.append(bucket < HELD_OUT_BUCKETS)
            test.append(VAL_BUCKETS <= bucket < HELD_OUT_BUCKETS)

    # photos: the other faces in a photo are found generously, so no background holds one
    search = _FaceSearch()
    task = progress.add_task("negatives: photos", total=len(photos)) if progress else None
    for name, img, pts in photos:
        gray = cv2.imread(str(img), cv2.IMREAD_GRAYSCALE)
        if gray is not None:
            found, _ = search.find(gray, min_face=40, max_side=320)
            keep(_photo_negatives(gray, read_pts(pts), found, _source_rng(seed, name)), name, id_bucket(name))
        if progress:
            progress.advance(task)

    task = progress.add_task("negatives: clips", total=len(clips) * frames_per_clip) if progress else None
    for clip in clips:
        rng = _source_rng(seed, clip.name)
        bucket = VAL_BUCKETS if clip.stem == held_out_clip else HELD_OUT_BUCKETS  # test, or train
        for gray in _read_frames(clip, frames_per_clip):
            found, confident = search.find(gray)
            keep(_frame_negatives(gray, found, confident, rng), f"video/{clip.stem}", bucket)
            if progress:
                progress.advance(task)

    for kind in ("flat", "gradient", "noise"):
        for i in range(synthetic_per_kind):
            name = f"synthetic/{kind}/{i}"
            keep(iter([(kind, _synthetic(kind, _source_rng(seed, name)))]), name, id_bucket(name))

    bank = NegativeBank(np.stack(crops), np.array(kinds), np.array(sources), np.array(held), np.array(test), key)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        bank.save(cache)
    return bank

