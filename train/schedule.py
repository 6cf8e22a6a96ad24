"""The learning-rate schedule (linear warm-up, then a cosine to zero) and ``--time-budget``'s clock.

By steps, the cosine reaches zero at the last step. With a time budget it follows whichever of
steps and training seconds is further along, so it reaches zero when the budget runs out however
busy the machine is, and ``out_of_time`` ends the run before an epoch would overrun it.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fkd.train.config import TrainConfig


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up, then a cosine down to zero."""
    w = max(1, int(total * warmup))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - w) / max(1, total - w))))


def lr_by_progress(progress: float, warmup: float) -> float:
    """The same warm-up and cosine as ``lr_factor``, on a progress fraction 0..1."""
    progress = min(1.0, max(0.0, progress))
    if progress < warmup:
        return max(progress / warmup, 1e-3)
    return 0.5 * (1 + math.cos(math.pi * (progress - warmup) / max(1e-9, 1 - warmup)))


@dataclass
class TrainingClock:
    """Seconds of training: those of earlier epochs (and runs, across --resume) plus the running
    epoch's. The loop sets both at the start of each epoch, so validation and pauses between
    runs never count."""

    start: float
    before: float = 0.0

    def spent(self) -> float:
        return self.before + time.time() - self.start


def lr_schedule(total_steps: int, cfg: TrainConfig, clock: TrainingClock) -> Callable[[int], float]:
    """The factor ``LambdaLR`` multiplies the learning rate by at each step.

    A plain function (a closure), not a callable object: ``LambdaLR`` would store an object's
    attributes in the checkpoint, and the clock must not travel with it.
    """
    def schedule(step: int) -> float:
        """By steps; with --time-budget, by whichever of steps and the clock is further along, so
        the cosine reaches zero when the budget (or the last epoch) does, however busy the machine."""
        if not cfg.time_budget:
            return lr_factor(step, total_steps, cfg.warmup)
        return lr_by_progress(max(step / total_steps, clock.spent() / cfg.time_budget), cfg.warmup)

    return schedule


def out_of_time(history: list[dict], cfg: TrainConfig) -> bool:
    """With ``--time-budget``: stop when less than half an epoch (median of the last five) is left."""
    if not cfg.time_budget or not history:
        return False
    times = [history[0]["seconds"]] + [b["seconds"] - a["seconds"] for a, b in itertools.pairwise(history)]
    per = sorted(times[-5:])[len(times[-5:]) // 2]
    return cfg.time_budget - history[-1]["seconds"] < 0.5 * per
