"""The network as training holds it: its training forward, warm start and ``--score-only``'s freeze.

Training needs more of ``KeypointNet`` than its exported forward gives (the heatmaps for their
loss, the 68-point head's input); ``TrainView`` returns all of it in one call, and is what
``--compile`` compiles. The exported network stays ``KeypointNet`` itself.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fkd.model.errors import FkdError
from fkd.model.net import KeypointNet
from fkd.train.dense import DenseHead


class TrainView(torch.nn.Module):
    """The network as training needs it: heatmaps, keypoints, face logit and, with a dense head,
    the 68 points (else an empty (N, 0, 2)) in one call (the part ``--compile`` compiles)."""

    def __init__(self, net: KeypointNet, dense: DenseHead | None = None) -> None:
        super().__init__()
        self.net, self.dense = net, dense

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        p, c3 = self.net.decode(x)
        h = self.net.head(p)
        kp = self.net.soft_argmax(h)
        dense = self.dense(self.net, p) if self.dense is not None else kp[:, :0]
        return h, kp, self.net.score(c3), dense


def load_matching(model: torch.nn.Module, path: Path) -> tuple[int, int]:
    """Copy every tensor of ``path`` (fkd weights or a run's checkpoint) whose name and shape
    match into ``model``; returns (copied, of how many the model has)."""
    path = Path(path)
    if not path.is_file():
        raise FkdError(f"--init {path}: no such file.")
    try:
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
    except Exception:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
        except Exception:
            raise FkdError(f"--init {path}: neither fkd weights nor a run checkpoint.") from None
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(take, strict=False)
    return len(take), len(own)


def freeze_all_but_score(model: KeypointNet) -> None:
    """For ``--score-only``: no gradient outside the face-score head. Call ``keep_frozen_in_eval``
    after every ``model.train()`` too, or batch-norm statistics would still drift."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("score."))


def keep_frozen_in_eval(model: KeypointNet) -> None:
    """Batch norms outside the score head use (and keep) their stored statistics, so the
    keypoints of a ``--score-only`` run are exactly those of the weights it started from."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d) and not name.startswith("score."):
            module.eval()
