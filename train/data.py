"""Any mix of --data sources -> one FaceSet, and the torch Dataset that augments it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fkd.model.errors import FkdError
from fkd.train.augment import AugmentConfig, augment
from fkd.train.faceset import FaceSet
from fkd.train.kaggle import read_training_csv
from fkd.train.pts import load_pts_folder


def load_sources(paths: list[Path], cache_dir: Path | None = None, progress=None) -> FaceSet:
    """A Kaggle CSV, a folder of .pts photos, or a folder of such folders, each path once."""
    sets = []
    for path in map(Path, paths):
        if path.is_file() and path.suffix.lower() == ".csv":
            sets.append(read_training_csv(path))
        elif path.is_dir():
            subdirs = sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob("*.pts")))
            if any(path.glob("*.pts")) or not subdirs:
                sets.append(load_pts_folder(path, cache_dir, progress=progress))
            else:
                sets.extend(load_pts_folder(d, cache_dir, progress=progress) for d in subdirs)
        elif not path.exists():
            raise FkdError(f"--data {path}: no such file or folder.")
        else:
            raise FkdError(f"--data {path}: expected a Kaggle .csv file or a folder of .pts photos.")
    return FaceSet.concat(sets)


class AugmentedFaces(Dataset):
    """Training samples, freshly augmented each time they are drawn."""

    def __init__(self, faces: FaceSet, cfg: AugmentConfig, seed: int) -> None:
        self.faces, self.cfg = faces, cfg
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int):
        f = self.faces
        image, points, mask = augment(f.context[i], f.context_to_crop[i], f.points[i], f.mask[i], self.cfg, self.rng)
        return torch.from_numpy(image)[None], torch.from_numpy(points), torch.from_numpy(mask)
