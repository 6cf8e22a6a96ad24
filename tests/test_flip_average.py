"""Flip averaging (``Predictor(flip=True)``, ``--flip``) on the shipped weights and real AFW faces."""

from pathlib import Path

import numpy as np
import pytest

from fkd.model.artifact import Predictor
from fkd.model.crop import CROP_SIZE, flip_crop
from fkd.model.schema import KEYPOINTS, mirror_points
from fkd.train.data.load import load_sources


@pytest.fixture(scope="module")
def crops(pts_folder: Path) -> np.ndarray:
    """The 16 real AFW faces, cropped as fkd-train and fkd-eval crop them."""
    return load_sources([pts_folder], None).crops


def test_mirror_points_twice_is_identity_and_matches_the_flipped_crop() -> None:
    rng = np.random.default_rng(3)
    points = rng.uniform(0, CROP_SIZE - 1, (4, len(KEYPOINTS), 2))
    assert np.allclose(mirror_points(mirror_points(points, CROP_SIZE), CROP_SIZE), points, rtol=0, atol=1e-12)
    _, flipped = flip_crop(np.zeros((4, CROP_SIZE, CROP_SIZE), np.uint8), points)
    assert np.array_equal(flipped, mirror_points(points, CROP_SIZE))  # one home for the mirror's arithmetic


def test_flip_averaged_keypoints_follow_a_mirrored_face_exactly(crops: np.ndarray, shipped_weights: Path) -> None:
    """The mean of a look and its mirror's look is the same whichever way round the face comes:
    a mirrored face gets the mirrored answer (the plain network only roughly does). That holds
    for the network's own answer; the weights' label offset is added after, in the frame's x."""
    shipped = Predictor(shipped_weights, flip=True)
    plain, both = shipped.with_flip(False).without_label_offset(), shipped.without_label_offset()
    mirrored = crops[..., ::-1]
    answer = both(crops)
    assert np.allclose(both(mirrored), mirror_points(answer, CROP_SIZE), atol=1e-3)
    drift = np.abs(plain(mirrored) - mirror_points(plain(crops), CROP_SIZE)).max()
    assert drift > 1e-2  # so the check above is not true of any predictor
    # the two looks are averaged: the answer lies between the plain answer and the mirror's
    back = mirror_points(plain(mirrored), CROP_SIZE)
    assert np.allclose(answer, (plain(crops) + back) / 2, atol=1e-3)
    # and the offset comes after the averaging, so the mirrored pass does not cancel it
    assert np.abs(shipped.x_offset).max() > 0.1  # the shipped weights carry one
    assert np.allclose(shipped(crops)[..., 0] - answer[..., 0], shipped.x_offset[None], atol=1e-4)
    assert np.allclose(shipped(crops)[..., 1], answer[..., 1], atol=1e-5)


def test_the_face_score_stays_the_plain_crops(crops: np.ndarray, shipped_weights: Path) -> None:
    """The threshold was calibrated on single looks, so the score must not change with --flip."""
    _, plain_scores = Predictor(shipped_weights).run(crops)
    keypoints, scores = Predictor(shipped_weights, flip=True).run(crops)
    assert keypoints.shape == (len(crops), len(KEYPOINTS), 2) and keypoints.dtype == np.float32
    assert np.array_equal(scores, plain_scores)


def test_with_flip_shares_the_network_and_changes_only_the_averaging(crops: np.ndarray,
                                                                     shipped_weights: Path) -> None:
    plain = Predictor(shipped_weights)
    flipping = plain.with_flip(True)
    assert not plain.flip and flipping.flip  # the original is left as it was
    assert np.array_equal(flipping(crops), Predictor(shipped_weights, flip=True)(crops))
