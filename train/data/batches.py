"""Training batches, made on the device: faces, 5-point faces and negatives, augmented in one go.

An epoch is one pass over the primary (15-point) faces; MTFL's 5-point faces and the negatives
for the face score ride along in each batch. The negatives come from the caller, from the
negative bank (``fkd.train.data.negatives``) or, for quick runs without one, from stand-ins cut out
of the training faces' context (``batch_augment.stand_in_negatives``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fkd.train.config import TrainConfig
from fkd.train.data.augment import AugmentConfig
from fkd.train.data.batch_augment import DeviceFaces, augment_batch, photometric, stand_in_negatives

#: ``negatives(n, generator)``: n negative crops (n, 1, 96, 96) on the device
Negatives = Callable[[int, torch.Generator], torch.Tensor]


def batches_per_epoch(n_primary: int, n_aux: int, cfg: TrainConfig) -> tuple[int, int, int]:
    """(steps, primary faces per batch, auxiliary faces per batch): an epoch is one pass over
    the primary faces, so MTFL makes batches richer without making epochs longer to count."""
    aux = int(round(cfg.batch_size * cfg.aux_share)) if n_aux else 0
    prim = cfg.batch_size - aux
    steps = max(1, n_primary // prim) if n_primary > prim else 1
    return steps, min(prim, n_primary), aux


@dataclass
class Batches:
    """Makes one training batch on the device: primary faces (the given indices), 5-point faces
    drawn at random, then negatives; all augmented there."""

    primary: DeviceFaces
    aux: DeviceFaces | None
    n_primary: int
    n_aux: int
    n_negatives: int
    augment: AugmentConfig
    negatives: Negatives

    def make(self, index: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(crops, points, mask, is_face): negatives carry zero points, an all-false mask and 0."""
        device = index.device
        x, y, m = augment_batch(self.primary, index, self.augment, gen)
        if self.aux is not None and self.n_aux:
            pick = torch.randint(0, len(self.aux), (self.n_aux,), generator=gen, device=device)
            ax, ay, am = augment_batch(self.aux, pick, self.augment, gen)
            x, y, m = torch.cat([x, ax]), torch.cat([y, ay]), torch.cat([m, am])
        is_face = torch.ones(len(x), device=device)
        n = self.n_negatives
        if n:
            x = torch.cat([x, self.negatives(n, gen)])
            y = torch.cat([y, torch.zeros(n, *y.shape[1:], device=device)])
            m = torch.cat([m, torch.zeros(n, m.shape[1], dtype=torch.bool, device=device)])
            is_face = torch.cat([is_face, torch.zeros(n, device=device)])
        return x, y, m, is_face


# keep one name for photometric changes of bank negatives (H4's crops are raw grey levels)
def augment_negatives(crops: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Bank negatives as training sees faces: mirrored half the time, then the same photometric
    changes, so the score head cannot tell faces from negatives by their augmentation."""
    flip = torch.rand(len(crops), generator=gen, device=crops.device) < 0.5
    x = torch.where(flip[:, None, None, None], crops.flip(-1), crops).float()
    return photometric(x, cfg, gen)


def bank_negatives(crops: torch.Tensor, aug: AugmentConfig, device: torch.device) -> Negatives:
    """Negatives drawn at random from the bank's training crops (uint8 (N, 1, 96, 96) on ``device``)."""
    def negatives(n: int, g: torch.Generator) -> torch.Tensor:
        pick = torch.randint(0, len(crops), (n,), generator=g, device=device)
        return augment_negatives(crops[pick], aug, g)

    return negatives


def stand_ins(faces: DeviceFaces, aug: AugmentConfig) -> Negatives:
    """Stand-in negatives cut from the training faces' context, for runs without a negative bank."""
    def negatives(n: int, g: torch.Generator) -> torch.Tensor:
        return stand_in_negatives(faces, n, aug, g)

    return negatives
