"""Kaggle's RMSE (in 96-px crop units) and NME, overall and per keypoint, over labelled values only."""

from __future__ import annotations

import numpy as np

from fkd.model.points import point_set


def keypoint_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict:
    """pred/target (N, K, 2) crop pixels, mask (N, K) -> rmse96, nme and per-keypoint figures,
    for Kaggle's 15 keypoints or iBUG's 68 points (K says which).

    NME divides each face's point errors by its outer-eye-corner distance, so it is only
    defined for faces with both corners labelled (Kaggle's 4-point rows have none).
    """
    pred, target, mask = (np.asarray(a, dtype=np.float64) for a in (pred, target, mask))
    points = point_set(target.shape[1])
    mask = mask.astype(bool)
    sq = ((pred - target) ** 2).sum(-1)  # (N, K)
    err = np.sqrt(sq)
    a, b = points.nme_pair
    norm_ok = mask[:, a] & mask[:, b]
    norm = np.linalg.norm(target[:, a] - target[:, b], axis=-1)
    norm_ok &= norm > 1e-6
    nme_mask = mask & norm_ok[:, None]
    rel = np.where(nme_mask, err / np.where(norm_ok, norm, 1.0)[:, None], 0.0)

    def rmse(m: np.ndarray, s: np.ndarray) -> float:
        n = 2 * m.sum()  # each labelled point is two labelled values
        return float(np.sqrt((s * m).sum() / n)) if n else float("nan")

    per_face = rel.sum(1) / np.maximum(nme_mask.sum(1), 1)
    per_kp = {}
    for k, name in enumerate(points.names):
        m = nme_mask[:, k]
        per_kp[name] = {
            "rmse96": rmse(mask[:, k], sq[:, k]),
            "nme": float(rel[m, k].mean()) if m.any() else float("nan"),
            "labelled": int(mask[:, k].sum()),
        }
    return {
        "rmse96": rmse(mask, sq),
        "nme": float(per_face[norm_ok].mean()) if norm_ok.any() else float("nan"),
        "faces": len(pred),
        "faces_with_nme": int(norm_ok.sum()),
        "per_keypoint": per_kp,
    }
