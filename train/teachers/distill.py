"""Distillation: a trained network's flip-averaged keypoints as a second target for every face.

Why it can help a data-limited net: the teacher answers for all 15 points of every crop as it
is augmented, including the ten points MTFL's faces leave unlabelled, and its answer is
smoother than one hand-marked label. The teacher is any fkd weights file (TorchScript); the
intended one is a wide net trained on a GPU (``--width 64``), distilled into the shipped size,
but the shipped weights themselves work too (self-distillation, bench/levers.sh). Several
teachers are averaged: on 300-W validation two fkd runs averaged score below either alone
(2.49 % against 2.52 and 2.60 %, flip-averaged with the label offset), and that mean is what
one student can then learn at a single network's cost.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        keypoints = teacher_keypoints([teacher], torch.zeros(1, 1, CROP_SIZE, CROP_SIZE, device=device))
    except Exception:
        raise FkdError(f"--teacher {path}: not fkd weights (a TorchScript network mapping 96x96 crops to "
                       f"{NUM_KEYPOINTS} keypoints).") from None
    if keypoints.shape != (1, NUM_KEYPOINTS, 2):
        raise FkdError(f"--teacher {path}: the network gives {tuple(keypoints.shape)}, not {NUM_KEYPOINTS} keypoints.")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def load_teachers(paths: Sequence[Path], device: torch.device) -> list[torch.jit.ScriptModule]:
    """Every ``--teacher`` given, loaded and checked in turn (the first bad one is named)."""
    return [load_teacher(Path(p), device) for p in paths]


@torch.no_grad()
def teacher_keypoints(teachers: Sequence[torch.nn.Module], x: torch.Tensor) -> torch.Tensor:
    """(N, 15, 2) crop-pixel keypoints for (N, 1, 96, 96) grey-level crops: for each teacher the
    mean of the crop's and its mirror's answers, as ``Predictor(flip=True)`` gives them before it
    adds the weights' label offset, then the mean over the teachers. The student learns the
    networks' own answer, which mirrors consistently; its own offset is measured when its
    training ends (``fkd.train.teachers.label_offset``)."""
    n = len(x)
    both = torch.cat([x, x.flip(-1)])
    total = torch.zeros(n, NUM_KEYPOINTS, 2, device=x.device)
    for teacher in teachers:
        out = teacher(both)
        keypoints = (out[0] if isinstance(out, tuple) else out).float()
        total += (keypoints[:n] + mirror_points(keypoints[n:], CROP_SIZE)) / 2
    return total / len(teachers)
