"""The training losses: keypoints (four kinds, masked to labelled points), heatmaps and the face score.

Each takes crop-pixel tensors and masks as ``train_step`` hands them over, and none reads the
config, so tests and benchmarks call them on their own. ``--loss`` names its kind; the choices
the command line offers are in ``fkd.train.choices`` (importable without torch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fkd.model.errors import FkdError
from fkd.model.schema import INDEX, NUM_KEYPOINTS
from fkd.train.choices import LOSSES

EYE_PX = 35.0  # eye-centre distance of the mean 300-W training face in the 96-px crop


def eye_scale(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) factors taking each face's errors to those of a face with ``EYE_PX`` between its eye centres.

    NME divides each face's error by its inter-ocular distance, so a turned head (eyes close
    together) counts more than a frontal one with the same pixel error; plain pixel losses weigh
    them alike. Eye centres, not NME's outer corners, because MTFL and Kaggle's 4-point rows
    label only the centres. Faces without both, and targets that are not the 15 keypoints (the
    68-point head), keep a factor of 1; the factor is capped at 3 so near-profile faces, whose
    eye distance is tiny, cannot dominate a batch.
    """
    ones = torch.ones(len(target), device=target.device)
    if target.shape[1] != NUM_KEYPOINTS:
        return ones
    left, right = INDEX["left_eye_center"], INDEX["right_eye_center"]
    distance = (target[:, left] - target[:, right]).norm(dim=-1)
    known = mask[:, left] & mask[:, right] & (distance > 1.0)
    return torch.where(known, (EYE_PX / distance.clamp(min=1.0)).clamp(max=3.0), ones)


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean loss over labelled points only (crop pixels); unlabelled points contribute nothing.

    Negatives for the face score carry an all-false mask, so they add nothing here either.
    """
    m = mask.float()
    pred, target = pred.float(), target.float()
    if kind == "smoothl1-eyes":
        scale = eye_scale(target, mask)[:, None, None]
        per_point = F.smooth_l1_loss(pred * scale, target * scale, reduction="none", beta=1.0).sum(-1)
    elif kind == "mse":
        per_point = ((pred - target) ** 2).sum(-1)
    elif kind == "smoothl1":
        per_point = F.smooth_l1_loss(pred, target, reduction="none", beta=1.0).sum(-1)
    elif kind == "wing":  # Feng et al. 2018, on the point distance, w and eps in crop pixels
        w, eps = 4.0, 1.0
        d = (pred - target).norm(dim=-1)
        c = w - w * math.log1p(w / eps)
        per_point = torch.where(d < w, w * torch.log1p(d / eps), d - c)
    else:
        raise FkdError(f"--loss must be one of {', '.join(LOSSES)}, not {kind!r}.")
    return (per_point * m).sum() / m.sum().clamp(min=1.0)


def heatmap_loss(heatmaps: torch.Tensor, beta: torch.Tensor, centres: torch.Tensor, target: torch.Tensor,
                 mask: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Cross-entropy of the soft-argmax distribution against a Gaussian (``sigma`` crop px x 4)
    around each labelled point: it shapes the heatmaps, where the point loss only moves their mean."""
    n, k, h, w = heatmaps.shape
    logp = torch.log_softmax(heatmaps.float().reshape(n, k, h * w) * beta, dim=-1)
    s = sigma * (centres[1] - centres[0])
    gx = torch.exp(-0.5 * ((centres[None, None, :] - target[..., 0:1]) / s) ** 2)  # (n, k, w)
    gy = torch.exp(-0.5 * ((centres[None, None, :] - target[..., 1:2]) / s) ** 2)  # (n, k, h)
    g = (gy[..., :, None] * gx[..., None, :]).reshape(n, k, h * w)
    g = g / g.sum(-1, keepdim=True).clamp(min=1e-12)
    m = mask.float()
    return (-(g * logp).sum(-1) * m).sum() / m.sum().clamp(min=1.0)


def score_loss(logit: torch.Tensor, is_face: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the face logit: faces are 1, negatives 0 (in float32 under autocast)."""
    return F.binary_cross_entropy_with_logits(logit.float(), is_face.float())
