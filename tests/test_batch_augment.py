"""The batched torch augmentation keeps each keypoint on the image feature it labels."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from fkd.model.schema import FLIP_PERMUTATION, INDEX, KAGGLE_MEAN
from fkd.train.data.augment import AugmentConfig
from fkd.train.data.batch_augment import (
    DeviceFaces,
    augment_batch,
    follow_field,
    geometry,
    smooth_field,
    stand_in_negatives,
)
from tests.test_augment import _centroid, _dotted_face

STILL = dict(brightness=0, contrast=0, gamma=0, blur=0, noise=0)


def _faces() -> DeviceFaces:
    return DeviceFaces.from_faceset(_dotted_face(), torch.device("cpu"))


def test_batched_geometry_moves_points_exactly_as_it_moves_pixels() -> None:
    # the cv2 reference test's ranges: stronger shrinking brings neighbouring dots into the window
    cfg = AugmentConfig(rotate_deg=25, scale=0.15, shift_px=6, flip=0.5, **STILL)
    images, points, mask = geometry(_faces(), torch.zeros(48, dtype=torch.long), cfg, torch.Generator().manual_seed(0))
    worst, checked = 0.0, 0
    for image, pts in zip(images[:, 0].numpy(), points.numpy()):
        for p in pts:
            if 5 < p[0] < 90 and 5 < p[1] < 90:
                worst = max(worst, float(np.linalg.norm(_centroid(image, p) - p)))
                checked += 1
    assert checked > 48 * 10
    assert worst < 0.3, f"a keypoint drifted {worst:.2f} px off its dot"
    assert mask.all()


def test_elastic_warp_moves_points_exactly_as_it_moves_pixels() -> None:
    """The non-rigid field bends each dot and its label alike, on top of pose and mirror."""
    cfg = AugmentConfig(rotate_deg=15, scale=0.1, shift_px=4, flip=0.5, elastic_px=3.0, **STILL)
    faces = _faces()
    images, points, _ = geometry(faces, torch.zeros(48, dtype=torch.long), cfg, torch.Generator().manual_seed(4))
    rigid = geometry(faces, torch.zeros(48, dtype=torch.long), replace(cfg, elastic_px=0.0),
                     torch.Generator().manual_seed(4))[1]
    bent = float((points - rigid).norm(dim=-1).max())
    assert bent > 2.0, f"the field moved no point by more than {bent:.2f} px"
    worst = 0.0
    for image, pts in zip(images[:, 0].numpy(), points.numpy()):
        for p in pts:
            if 5 < p[0] < 90 and 5 < p[1] < 90:
                worst = max(worst, float(np.linalg.norm(_centroid(image, p) - p)))
    assert worst < 0.3, f"a keypoint drifted {worst:.2f} px off its dot"


def test_following_the_field_inverts_it() -> None:
    field = smooth_field(8, 4.0, torch.Generator().manual_seed(5), torch.device("cpu"))
    p = torch.rand(8, 15, 2, generator=torch.Generator().manual_seed(6)) * 80 + 8
    q = follow_field(p, field)
    # sampling the field where the points landed brings them back: q + field(q) = p
    where = ((2 * q + 1) / 96 - 1)[:, :, None]
    d = torch.nn.functional.grid_sample(field, where, align_corners=False)[..., 0].transpose(1, 2)
    assert float((q + d - p).abs().max()) < 1e-3


def test_flip_mirrors_the_points_and_swaps_the_pairs() -> None:
    cfg = AugmentConfig(rotate_deg=0, scale=0, shift_px=0, flip=1.0, **STILL)
    faces = _faces()
    faces.mask[0] = False
    faces.mask[0, INDEX["left_eye_center"]] = True  # only the subject's left eye is labelled
    images, points, mask = geometry(faces, torch.zeros(1, dtype=torch.long), cfg, torch.Generator().manual_seed(0))
    want = KAGGLE_MEAN[list(FLIP_PERMUTATION)].copy()
    want[:, 0] = 95 - want[:, 0]
    assert np.allclose(points[0].numpy(), want, atol=1e-3)
    # in the mirror, the dot at the old left eye is now the subject's right eye
    assert mask[0].nonzero().flatten().tolist() == [INDEX["right_eye_center"]]
    right = points[0, INDEX["right_eye_center"]].numpy()
    assert np.allclose(right, (95 - KAGGLE_MEAN[INDEX["left_eye_center"], 0], KAGGLE_MEAN[INDEX["left_eye_center"], 1]),
                       atol=1e-3)
    assert np.linalg.norm(_centroid(images[0, 0].numpy(), right) - right) < 0.5


def test_photometric_changes_stay_in_range_and_leave_points_alone() -> None:
    cfg = AugmentConfig(rotate_deg=0, scale=0, shift_px=0, flip=0, blur=1.0, noise=1.0, occlusion=1.0)
    x, points, _ = augment_batch(_faces(), torch.zeros(16, dtype=torch.long), cfg, torch.Generator().manual_seed(1))
    assert x.shape == (16, 1, 96, 96) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 255
    assert np.allclose(points.numpy(), KAGGLE_MEAN[None], atol=1e-3)
    assert float(x.std(dim=(1, 2, 3)).min()) > 0  # no sample came out blank


def test_stand_in_negatives_are_crops_of_the_right_shape() -> None:
    neg = stand_in_negatives(_faces(), 10, AugmentConfig(), torch.Generator().manual_seed(2))
    assert neg.shape == (10, 1, 96, 96)
    assert float(neg.min()) >= 0 and float(neg.max()) <= 255


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; the CPU path is tested above")
def test_the_same_augmentation_runs_on_the_gpu() -> None:
    faces = DeviceFaces.from_faceset(_dotted_face(), torch.device("cuda"))
    cfg = AugmentConfig(rotate_deg=25, scale=0.15, shift_px=6, flip=0.5, **STILL)
    images, points, _ = geometry(faces, torch.zeros(32, dtype=torch.long, device="cuda"), cfg,
                                 torch.Generator(device="cuda").manual_seed(0))
    worst = 0.0
    for image, pts in zip(images[:, 0].cpu().numpy(), points.cpu().numpy()):
        for p in pts:
            if 5 < p[0] < 90 and 5 < p[1] < 90:
                worst = max(worst, float(np.linalg.norm(_centroid(image, p) - p)))
    assert worst < 0.6


def test_blur_and_noise_with_no_sample_chosen_leave_the_batch_whole() -> None:
    cfg = AugmentConfig(rotate_deg=0, scale=0, shift_px=0, flip=0, blur=1e-9, noise=1e-9)
    for n in (1, 2, 5):
        x, _, _ = augment_batch(_faces(), torch.zeros(n, dtype=torch.long), cfg, torch.Generator().manual_seed(n))
        assert x.shape == (n, 1, 96, 96)
