"""An exponential moving average of the network's weights (``--ema``), for validation and export.

The average over the recent steps (about 1 / (1 - decay) of them: a thousand at the default
0.999) is steadier than any one step's weights; the loop validates, keeps and exports it, and
checkpoints it for --resume.
"""

from __future__ import annotations

import copy

import torch


class EMA:
    """An exponential moving average of the weights (buffers copied), warmed up over the first
    steps so that short runs are not dominated by the random start."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.steps = decay, 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        mine: list[torch.Tensor] = list(self.model.parameters())
        theirs: list[torch.Tensor] = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(mine, theirs, 1 - d)
        for b, src in zip(self.model.buffers(), model.buffers()):
            if b.dtype.is_floating_point:
                b.lerp_(src, 1 - d)
            else:
                b.copy_(src)
