"""Any mix of --data sources -> one FaceSet, cached as one file; and the per-face torch Dataset.

The cache is a single ``faces-<key>.npz`` whose key hashes the content of every source file
(images, landmark files, CSVs) together with the crop convention and detector settings: any
changed byte gives a new key and a rebuild, an unchanged tree reuses it. The file holds the
finished crops, so it trains anywhere, including on machines whose OpenCV has no Haar
cascades (OpenCV 5): pass the .npz itself as ``--data``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fkd.model.errors import FkdError
from fkd.model.io.paths import shown
from fkd.model.points import point_set
from fkd.train.data.augment import AugmentConfig, augment
from fkd.train.data.faceset import FaceSet
from fkd.train.data.kaggle import read_training_csv
from fkd.train.data.mtfl import content_key as mtfl_key
from fkd.train.data.mtfl import is_mtfl_folder, load_mtfl
from fkd.train.data.pts import _content_key as pts_key
from fkd.train.data.pts import find_pairs, load_pts_folder

CACHE_VERSION = "faces-v3"  # v3: faces carry their 68 iBUG points


def expand(paths: list[Path]) -> list[tuple[str, Path]]:
    """(kind, path) per source: 'csv', 'npz', 'mtfl' or 'pts' (a folder of folders gives each)."""
    out: list[tuple[str, Path]] = []
    for path in map(Path, paths):
        if path.is_file() and path.suffix.lower() == ".csv":
            out.append(("csv", path))
        elif path.is_file() and path.suffix.lower() == ".npz":
            out.append(("npz", path))
        elif path.is_dir() and is_mtfl_folder(path):
            out.append(("mtfl", path))
        elif path.is_dir():
            subdirs = sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob("*.pts")))
            if any(path.glob("*.pts")) or not subdirs:
                out.append(("pts", path))
            else:
                out.extend(("pts", d) for d in subdirs)
        elif not path.exists():
            raise FkdError(f"--data {path}: no such file or folder.")
        else:
            raise FkdError(f"--data {path}: expected a Kaggle .csv, a faces .npz, an MTFL folder or a folder "
                           "of .pts photos.")
    return out


def source_key(kind: str, path: Path, points: int = 15) -> str:
    """A hash of everything a source's crops depend on (``points`` picks the crop of .pts photos)."""
    if kind == "pts":
        return pts_key(find_pairs(path), path, point_set(points))
    if kind == "mtfl":
        return mtfl_key(path)
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]


def cache_path(sources: list[tuple[str, Path]], cache_dir: Path, points: int = 15) -> Path:
    h = hashlib.sha1(CACHE_VERSION.encode())
    for kind, path in sources:
        h.update(f"{kind}:{path.name}:{source_key(kind, path, points)}".encode())
    return Path(cache_dir) / f"faces-{h.hexdigest()[:16]}.npz"


def load_one(kind: str, path: Path, cache_dir: Path | None = None, progress=None, points: int = 15) -> FaceSet:
    """One source; photo folders through their own content-keyed cache file when ``cache_dir`` is given.

    ``points=68`` crops .pts photos for the 68-point model (the whole face, all 68 as labels);
    Kaggle's CSV and MTFL mark too few of them, so they are refused for it.
    """
    if points != 15 and kind in ("csv", "mtfl"):
        raise FkdError(f"--data {path}: a {'Kaggle CSV' if kind == 'csv' else 'MTFL folder'} has no 68-point "
                       "labels; --points 68 trains on folders of .pts photos.")
    if kind == "csv":
        return read_training_csv(path)
    if kind == "npz":
        try:
            faces = FaceSet.load(path)
        except Exception:
            raise FkdError(f"--data {path}: not a faces .npz written by fkd-train's cache.") from None
        if faces.points.shape[1] != points:
            raise FkdError(f"--data {path}: its faces carry {faces.points.shape[1]} points, not {points}.")
        return faces
    cache = Path(cache_dir) / f"{kind}-{path.name}-{source_key(kind, path, points)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            return FaceSet.load(cache)
        except Exception:
            pass  # a damaged cache is rebuilt below
    faces = load_mtfl(path, progress=progress) if kind == "mtfl" else \
        load_pts_folder(path, None, progress=progress, points=points)
    if cache is not None:
        save_cache(faces, cache)
    return faces


def save_cache(faces: FaceSet, cache: Path) -> None:
    """Write a cache file; a read-only or full cache folder costs speed next time, not this run."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        faces.save(cache)
    except OSError as e:
        print(f"warning: cannot write the cache {shown(cache.parent)} ({e.strerror}); going on without it.",
              file=sys.stderr)


def load_sources(paths: list[Path], cache_dir: Path | None = None, progress=None, points: int = 15) -> FaceSet:
    """A Kaggle CSV, a faces .npz, an MTFL folder or a folder of .pts photos, each path once.

    With ``cache_dir``, each photo source is cached in its own content-keyed file, and a mix of
    sources also as one file (``faces-<key>.npz``) that ``--data`` accepts on any machine.
    ``points`` (15 or 68) picks the crop and the labels, as ``load_one`` says.
    """
    sources = expand(paths)
    photo = [s for s in sources if s[0] in ("pts", "mtfl")]
    combined = cache_path(sources, cache_dir, points) if cache_dir and len(sources) > 1 and photo else None
    if combined is not None and combined.is_file():
        try:
            return FaceSet.load(combined)
        except Exception:
            pass  # a damaged cache is rebuilt below
    faces = FaceSet.concat([load_one(kind, path, cache_dir, progress, points) for kind, path in sources])
    if combined is not None:
        save_cache(faces, combined)
    return faces


class AugmentedFaces(Dataset):
    """Training samples through the per-face cv2 augmentation (the reference the batched
    torch path in ``batch_augment`` is tested against)."""

    def __init__(self, faces: FaceSet, cfg: AugmentConfig, seed: int) -> None:
        self.faces, self.cfg = faces, cfg
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int):
        f = self.faces
        image, points, mask = augment(f.context[i], f.context_to_crop[i], f.points[i], f.mask[i], self.cfg, self.rng)
        return torch.from_numpy(image)[None], torch.from_numpy(points), torch.from_numpy(mask)
