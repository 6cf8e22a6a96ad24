"""Distillation: a trained network's flip-averaged keypoints as a second target for every face.

Why it can help a data-limited net: the teacher answers for all 15 points of every crop as it
is augmented, including the ten points MTFL's faces leave unlabelled, and its answer is
smoother than one hand-marked label. The teacher is any fkd weights file (TorchScript); the
intended one is a wide net trained on a GPU (``--width 64``), distilled into the shipped size,
but the shipped weights themselves work too (self-distillation, bench/levers.sh).
"""

from __future__ import annotations

from pathlib import Path

import torch

from fkd.model.crop import CROP_SIZE
from fkd.model.errors import FkdError
from fkd.model.schema import NUM_KEYPOINTS, mirror_points


def load_teacher(path: Path, device: torch.device) -> torch.jit.ScriptModule:
    """The teacher network on ``device``, frozen; one sentence if ``path`` is not fkd weights."""
    path = Path(path)
    if not path.is_file():
        raise FkdError(f"--teacher {path}: no such file.")
    try:
        teacher = torch.jit.load(str(path), map_location=device).eval()
        keypoints = teacher_keypoints(teacher, torch.zeros(1, 1, CROP_SIZE, CROP_SIZE, device=device))
    except Exception:
        raise FkdError(f"--teacher {path}: not fkd weights (a TorchScript network mapping 96x96 crops to "
                       f"{NUM_KEYPOINTS} keypoints).") from None
    if keypoints.shape != (1, NUM_KEYPOINTS, 2):
        raise FkdError(f"--teacher {path}: the network gives {tuple(keypoints.shape)}, not {NUM_KEYPOINTS} keypoints.")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def teacher_keypoints(teacher: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, 15, 2) crop-pixel keypoints for (N, 1, 96, 96) grey-level crops: the mean of the crop's
    and its mirror's answers, as ``Predictor(flip=True)`` gives them before it adds the weights'
    label offset. The student learns the network's own answer, which mirrors consistently; its
    own offset is measured when its training ends (``fkd.train.label_offset``)."""
    out = teacher(torch.cat([x, x.flip(-1)]))
    keypoints = (out[0] if isinstance(out, tuple) else out).float()
    n = len(x)
    return (keypoints[:n] + mirror_points(keypoints[n:], CROP_SIZE)) / 2
