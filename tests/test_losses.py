"""The training losses: each one fkd-train offers is computed, masked, and weighs faces as it says."""

from __future__ import annotations

import pytest
import torch

from fkd.model.errors import FkdError
from fkd.model.schema import INDEX, KAGGLE_MEAN
from fkd.train.choices import LOSSES
from fkd.train.losses import EYE_PX, eye_scale, masked_loss


def test_every_loss_the_command_line_offers_is_one_the_loop_computes() -> None:
    """The command line's choices (importable without torch) each give a loss that is zero on target,
    grows with the error and ignores unlabelled points; anything else is refused in one sentence."""
    target = torch.zeros(2, 15, 2)
    mask = torch.ones(2, 15, dtype=torch.bool)
    mask[1] = False  # a face with no labels: its points must not count
    near, far = target.clone(), target.clone()
    near[0] += 0.5
    far[0] += 3.0
    wild = far.clone()
    wild[1] += 100.0  # only the unlabelled face differs from `far`
    for kind in LOSSES:
        assert masked_loss(target, target, mask, kind).item() == 0.0
        assert 0.0 < masked_loss(near, target, mask, kind).item() < masked_loss(far, target, mask, kind).item()
        assert masked_loss(wild, target, mask, kind).item() == masked_loss(far, target, mask, kind).item(), kind
    with pytest.raises(FkdError, match="--loss must be one of"):
        masked_loss(near, target, mask, "l1")


def faces_with_eye_distances(*distances: float) -> torch.Tensor:
    """Kaggle's mean face scaled about its eye midpoint so its eye centres lie ``distance`` px apart."""
    mean = torch.tensor(KAGGLE_MEAN, dtype=torch.float32)
    left, right = mean[INDEX["left_eye_center"]], mean[INDEX["right_eye_center"]]
    middle, apart = (left + right) / 2, (left - right).norm()
    return torch.stack([middle + (mean - middle) * (d / apart) for d in distances])


def test_eye_scaled_loss_weighs_faces_as_nme_does() -> None:
    target = faces_with_eye_distances(EYE_PX, EYE_PX / 2)
    mask = torch.ones(2, 15, dtype=torch.bool)
    torch.testing.assert_close(eye_scale(target, mask), torch.tensor([1.0, 2.0]))
    # the same 0.4 px error on every point: smooth-L1 is quadratic there, so the face with its
    # eyes half as far apart (the same NME error twice over) costs four times as much
    error = torch.full((2, 15, 2), 0.4)
    per_face = [masked_loss(target[i:i + 1] + error[i:i + 1], target[i:i + 1], mask[i:i + 1], "smoothl1-eyes")
                for i in range(2)]
    torch.testing.assert_close(per_face[1], 4 * per_face[0])
    plain = [masked_loss(target[i:i + 1] + error[i:i + 1], target[i:i + 1], mask[i:i + 1], "smoothl1")
             for i in range(2)]
    torch.testing.assert_close(plain[0], plain[1])


def test_eye_scale_is_one_without_both_eye_centres_and_capped_for_profiles() -> None:
    target = faces_with_eye_distances(EYE_PX, EYE_PX, EYE_PX / 20)
    mask = torch.ones(3, 15, dtype=torch.bool)
    target[0] *= 2  # eyes 2 x EYE_PX apart...
    mask[0, INDEX["left_eye_center"]] = False  # ...but one eye centre unlabelled: no rescaling
    torch.testing.assert_close(eye_scale(target, mask), torch.tensor([1.0, 1.0, 3.0]))
    dense = torch.zeros(3, 68, 2)  # the 68-point head's targets carry no eye centres at these rows
    torch.testing.assert_close(eye_scale(dense, torch.ones(3, 68, dtype=torch.bool)), torch.ones(3))
