"""Augmentation must keep each keypoint on the image feature it labels."""

import cv2
import numpy as np

from fkd.model.schema import KAGGLE_MEAN
from fkd.train.data.augment import AugmentConfig, augment
from fkd.train.data.faceset import FaceSet


def _dotted_face() -> FaceSet:
    """A synthetic 96x96 'face': one bright dot at each of Kaggle's mean keypoint positions."""
    big = np.zeros((96 * 8, 96 * 8), np.float32)
    for x, y in KAGGLE_MEAN:
        cv2.circle(big, (int(round((x + 0.5) * 8 - 0.5)), int(round((y + 0.5) * 8 - 0.5))), 10, 255, -1)
    crop = cv2.resize(big, (96, 96), interpolation=cv2.INTER_AREA).astype(np.uint8)
    return FaceSet.from_crops(["dots"], crop[None], KAGGLE_MEAN[None], np.ones((1, 15), bool))


def _centroid(image: np.ndarray, near: np.ndarray, r: int = 3) -> np.ndarray:
    x0, y0 = int(round(near[0])), int(round(near[1]))
    win = image[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1].astype(np.float64)
    ys, xs = np.mgrid[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1]
    return np.array([(xs * win).sum() / win.sum(), (ys * win).sum() / win.sum()])


def test_geometric_augmentation_moves_points_with_the_pixels() -> None:
    face = _dotted_face()
    cfg = AugmentConfig(rotate_deg=25, scale=0.15, shift_px=6, flip=0.5, brightness=0, contrast=0,
                        gamma=0, blur=0, noise=0)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(40):
        image, pts, mask = augment(face.context[0], face.context_to_crop[0], face.points[0], face.mask[0], cfg, rng)
        assert mask.all()
        for p in pts:
            if 5 < p[0] < 90 and 5 < p[1] < 90:
                worst = max(worst, float(np.linalg.norm(_centroid(image, p) - p)))
    assert worst < 0.6, f"a keypoint drifted {worst:.2f} px off its dot"


def test_photometric_augmentation_leaves_geometry_alone_and_stays_in_range() -> None:
    face = _dotted_face()
    cfg = AugmentConfig(rotate_deg=0, scale=0, shift_px=0, flip=0)
    image, pts, _ = augment(face.context[0], face.context_to_crop[0], face.points[0], face.mask[0], cfg,
                            np.random.default_rng(3))
    assert np.allclose(pts, KAGGLE_MEAN, atol=1e-4)
    assert image.dtype == np.float32 and image.min() >= 0 and image.max() <= 255
