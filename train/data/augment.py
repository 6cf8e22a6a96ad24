"""Training augmentation, in cv2 and numpy: geometry that moves the keypoints exactly, then light.

Geometry is one random similarity about the crop centre (rotation, scale, shift), composed
with the face's context->crop affine, so each sample is resampled once from the wide context
crop. A horizontal flip mirrors the result and swaps left/right labels (model.schema).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from fkd.model.crop import CROP_SIZE, flip_crop
from fkd.model.schema import flip_permutation


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 18.0
    scale: float = 0.10  # log-uniform in [1 - s, 1 + s]
    shift_px: float = 5.0
    flip: float = 0.5
    brightness: float = 0.15  # fraction of full range
    contrast: float = 0.3
    gamma: float = 0.35  # log-uniform in [exp(-g), exp(g)]
    blur: float = 0.2  # probability of a Gaussian blur
    noise: float = 0.3  # probability of Gaussian noise up to 8 grey levels
    occlusion: float = 0.0  # probability of a random occluding rectangle (batched path only)
    elastic_px: float = 0.0  # spread of a smooth non-rigid warp, crop pixels (batched path only; 0: off)
    #: probability that a crop is seen at a small face's resolution: shrunk to LOW_RES_SIDES px and
    #: enlarged back, as a 15-40 px face in a crowd reaches the network (batched path only)
    low_res: float = 0.0


#: named recipes for fkd-train --augment; "strong" is issue 10's heavier variant (occlusion, +-30 deg)
AUGMENT_PRESETS: dict[str, dict] = {
    "default": asdict(AugmentConfig()),
    "strong": asdict(AugmentConfig(rotate_deg=30.0, scale=0.2, shift_px=6.0, blur=0.3, occlusion=0.3)),
    "elastic": asdict(AugmentConfig(rotate_deg=30.0, scale=0.2, shift_px=6.0, blur=0.3, occlusion=0.3,
                                    elastic_px=2.0)),
    # "strong" plus small faces' resolution, for YuNet's crowd faces (bench/crowd_faces.py)
    "strong-small": asdict(AugmentConfig(rotate_deg=30.0, scale=0.2, shift_px=6.0, blur=0.3, occlusion=0.3,
                                         low_res=0.25)),
}


def similarity(angle_deg: float, scale: float, shift: tuple[float, float], size: int = CROP_SIZE) -> np.ndarray:
    """2x3 affine rotating by ``angle_deg`` and scaling about the crop centre, then shifting."""
    c = (size - 1) / 2
    a = math.radians(angle_deg)
    cs, sn = scale * math.cos(a), scale * math.sin(a)
    return np.array([[cs, -sn, c - cs * c + sn * c + shift[0]],
                     [sn, cs, c - sn * c - cs * c + shift[1]]], dtype=np.float64)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine that applies ``inner`` and then ``outer``."""
    return (np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]]))[:2]


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ m[:, :2].T + m[:, 2]


def warp(image: np.ndarray, image_to_crop: np.ndarray, points: np.ndarray, transform: np.ndarray):
    """Resample ``image`` into a crop moved by ``transform``; points are already in crop pixels."""
    m = compose(transform, image_to_crop)
    out = cv2.warpAffine(image, m, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return out, apply_affine(transform, points)


def photometric(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    x: np.ndarray = image.astype(np.float32) / 255.0
    if rng.random() < cfg.blur:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    x = np.power(np.clip(x, 0, 1), math.exp(rng.uniform(-cfg.gamma, cfg.gamma)))
    x = (x - 0.5) * (1 + rng.uniform(-cfg.contrast, cfg.contrast)) + 0.5
    x = x + rng.uniform(-cfg.brightness, cfg.brightness)
    if rng.random() < cfg.noise:
        x = x + rng.normal(0, rng.uniform(0, 8 / 255), x.shape).astype(np.float32)
    return np.clip(x * 255.0, 0, 255).astype(np.float32)


def augment(context: np.ndarray, context_to_crop: np.ndarray, points: np.ndarray, mask: np.ndarray,
            cfg: AugmentConfig, rng: np.random.Generator):
    """One training sample: (96x96 float32 image, (K, 2) points, (K,) mask), K = 15 or 68."""
    t = similarity(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg),
                   math.exp(rng.uniform(math.log(1 - cfg.scale), math.log(1 + cfg.scale))),
                   (rng.uniform(-cfg.shift_px, cfg.shift_px), rng.uniform(-cfg.shift_px, cfg.shift_px)))
    image, pts = warp(context, context_to_crop, points, t)
    if rng.random() < cfg.flip:
        image, pts = flip_crop(image, pts)
        mask = mask[list(flip_permutation(len(mask)))]
    return photometric(image, cfg, rng), pts.astype(np.float32), mask

