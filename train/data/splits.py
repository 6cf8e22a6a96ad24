"""A run's three splits, and the network measured on one of them.

The splits are a hash of each face's id (``FaceSet.split``), so a face stays in its split
across runs and resumes; the loop writes the validation and test ids down with the run. The
test split is touched once, by the export. ``evaluate_split`` gives every figure the loop's
history and the export report, on the CPU or the training device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fkd.model.artifact import add_label_offset
from fkd.train.config import TrainConfig
from fkd.train.data.faceset import FaceSet
from fkd.train.data.mtfl import AUX_PREFIX, eye_nme
from fkd.train.evaluation.metrics import keypoint_metrics


@dataclass
class Splits:
    """The faces a run trains on, the ones it picks its best epoch on, and the ones it reports once."""

    train: FaceSet
    val: FaceSet
    test: FaceSet

    @staticmethod
    def primary(faces: FaceSet) -> np.ndarray:
        """True for faces with the full 15 points' source (300-W, Kaggle), false for 5-point MTFL."""
        return np.array([not i.startswith(AUX_PREFIX) for i in faces.ids], bool)


def split_faces(faces: FaceSet, cfg: TrainConfig) -> Splits:
    """Train, validation and test by ``cfg``'s fractions; validation is never empty."""
    train_idx, val_idx, test_idx = faces.split(cfg.val_fraction, cfg.test_fraction)
    if len(val_idx) == 0:
        val_idx, train_idx = train_idx[:1], train_idx[1:]
    return Splits(faces.subset(train_idx), faces.subset(val_idx), faces.subset(test_idx))


def model_outputs(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(keypoints, face logit or None): old networks return keypoints only."""
    if isinstance(out, tuple):
        return out[0], out[1]
    return out, None


@torch.no_grad()
def predict(model: torch.nn.Module, crops: np.ndarray | torch.Tensor, device: torch.device,
            batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, 15, 2) and face scores (N,) in 0..1 (1.0 from a network without the head)."""
    model.eval()
    kps, scores = [], []
    for i in range(0, len(crops), batch):
        chunk = crops[i:i + batch]
        x = chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.asarray(chunk, np.float32))
        x = x.float().reshape(-1, 1, *x.shape[-2:]).to(device)
        kp, logit = model_outputs(model(x))
        kps.append(kp.float().cpu().numpy())
        scores.append(torch.sigmoid(logit).float().cpu().numpy() if logit is not None else np.ones(len(x), np.float32))
    if not kps:
        count = getattr(getattr(model, "head", None), "out_channels", 15)
        return np.zeros((0, count, 2), np.float32), np.zeros(0, np.float32)
    return np.concatenate(kps), np.concatenate(scores)


def evaluate_split(model: torch.nn.Module, faces: FaceSet, device: torch.device,
                   x_offset: np.ndarray | None = None) -> dict:
    """Keypoint metrics on the primary (15-point) faces, and eye-normalised NME on MTFL's.

    ``x_offset`` is the exported weights' label offset (``fkd.train.teachers.label_offset``), so that the
    final figures are those of what fkd-predict runs; the per-epoch figures go without it.
    """
    primary = Splits.primary(faces)
    out: dict = {}
    shift = np.zeros(faces.points.shape[1], np.float32) if x_offset is None else x_offset
    if primary.any():
        kp, score = predict(model, faces.crops[primary], device)
        kp = add_label_offset(kp, shift)
        out = keypoint_metrics(kp, faces.points[primary], faces.mask[primary])
        out["scores"] = score
        out["pred"] = kp
    if (~primary).any():
        kp, score = predict(model, faces.crops[~primary], device)
        out["mtfl"] = eye_nme(add_label_offset(kp, shift), faces.points[~primary], faces.mask[~primary])
        out["mtfl_scores"] = score
    return out
