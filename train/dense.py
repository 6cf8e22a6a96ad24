"""Dense supervision: all 68 iBUG points of a 300-W photo as a training-only second head.

Why: the 300-W labels mark 68 points per face, and the 15 Kaggle keypoints use 24 of them
(the eye centres average six). The model is data-limited (validation flattens while the
training loss keeps falling), and the other points (jaw line, eye and lip contours, nostrils)
say where the face's parts are just as the 15 do. A second 1x1 convolution reads the same
decoder features as the keypoint head and is trained on all 68 points; the decoder has to
serve both. The head is left out of the exported weights, so inference costs nothing more.

Only points the soft-argmax can reach are learnt. The crop frames the face from the brows to
the lips, so the chin lies below it in most crops (points 7-9 of the jaw in 82-88 % of
300-W's faces): a target outside the heatmap's cell centres is an error the head can never
close, and its gradient would push on the shared features for ever. A first 30-epoch run
that learnt them all was 0.44 points behind the base run by epoch 14.

Measured, it does not pay with the shipped width: at weight 0.25 a 30-epoch run ends 0.09
points behind the base (bench/RESULTS.md, "The 68 points as a second head"), so
``--dense-weight`` is off by default and kept for wider networks and longer runs.
"""

from __future__ import annotations

import torch
from torch import nn

from fkd.model.net import KeypointNet
from fkd.train.data.faceset import DENSE_POINTS


def within_reach(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N, K) true where a (N, K, 2) target lies within the soft-argmax's range of positions."""
    return ((points >= centres[0]) & (points <= centres[-1])).all(-1)


class DenseHead(nn.Module):
    """Decoder features -> (N, 68, 2) points in crop pixels, decoded by the network's own
    soft-argmax (its learned sharpness and cell centres), so both heads speak in one unit."""

    def __init__(self, net: KeypointNet) -> None:
        super().__init__()
        self.conv = nn.Conv2d(net.head.in_channels, DENSE_POINTS, 1)

    def forward(self, net: KeypointNet, decoded: torch.Tensor) -> torch.Tensor:
        return net.soft_argmax(self.conv(decoded))
