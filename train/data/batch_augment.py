"""Training augmentation for a whole batch at once, in torch, on whatever device trains.

The context crops of every training face sit on the device as one uint8 tensor. A batch is
one ``affine_grid``/``grid_sample`` call: each sample's context->crop affine is composed
with a random similarity (rotation, scale, shift about the crop centre) and, for half of
them, a mirror; the keypoints are moved by the very same 3x3 matrices, and a mirrored
sample's labels are swapped left<->right (``model.schema.FLIP_PERMUTATION``). With
``elastic_px`` a smooth random displacement field joins the same sampling grid, so faces
also change shape (a longer nose, a wider mouth), not only pose; the keypoints follow it
through its inverse. Light changes
(blur, gamma, contrast, brightness, noise) and optional occlusion follow, batched too.

This replaces the per-face cv2 path (``train/data/augment.py``, kept as the reference the tests
compare against): on a GPU the CPU no longer feeds the network one face at a time, and on
two CPU cores the batched resampling is cheaper than 64 ``cv2.warpAffine`` calls.

The same module makes the stand-in negatives for the face-score head (flat, gradient and
noise patches, and crops of the context zoomed onto a part of the face or pushed half a
face away) for when no negative bank is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fkd.model.crop import CROP_SIZE
from fkd.model.schema import FLIP_PERMUTATION, IBUG68_FLIP_PERMUTATION, NUM_KEYPOINTS
from fkd.train.data.augment import AugmentConfig
from fkd.train.data.faceset import DENSE_POINTS, FaceSet


@dataclass
class DeviceFaces:
    """A FaceSet's training inputs as device tensors: context crops, affines, labels."""

    context: torch.Tensor  # uint8 (N, 1, S, S)
    to_crop: torch.Tensor  # float32 (N, 3, 3): context pixel -> crop pixel
    #: float32 (N, K, 2), crop pixels: the 15 keypoints, then the 68 iBUG points with ``dense``,
    #: then the teacher's 15 with ``taught`` (``label_blocks`` tells them apart by K)
    points: torch.Tensor
    mask: torch.Tensor  # bool (N, K)

    @classmethod
    def from_faceset(cls, faces: FaceSet, device: torch.device, dense: bool = False,
                     taught: tuple[np.ndarray, np.ndarray] | None = None) -> DeviceFaces:
        """With ``dense``, each face's 68 iBUG points follow its 15 keypoints (masked off where the
        source has none); with ``taught`` ((N, 15, 2) points, (N,) or (N, 15) mask), a second
        target's 15 follow last. Augmentation moves and mirrors them all in one go."""
        n = len(faces)
        affine = torch.zeros(n, 3, 3)
        affine[:, :2] = torch.from_numpy(faces.context_to_crop.astype("float32"))
        affine[:, 2, 2] = 1.0
        points, mask = faces.points.astype("float32"), faces.mask.astype(bool)
        if dense:
            known = np.isfinite(faces.dense).all(-1)
            points = np.concatenate([points, np.nan_to_num(faces.dense).astype("float32")], axis=1)
            mask = np.concatenate([mask, known], axis=1)
        if taught is not None:
            extra, known = taught
            known = np.broadcast_to(np.asarray(known, bool).reshape(n, -1), (n, NUM_KEYPOINTS))
            points = np.concatenate([points, np.nan_to_num(extra).astype("float32")], axis=1)
            mask = np.concatenate([mask, known & np.isfinite(extra).all(-1)], axis=1)
        return cls(torch.from_numpy(faces.context).to(device)[:, None], affine.to(device),
                   torch.from_numpy(points).to(device), torch.from_numpy(mask).to(device))

    def __len__(self) -> int:
        return len(self.context)


def label_blocks(k: int) -> tuple[int, int]:
    """(dense points, taught points) after the 15 keypoints in ``k`` training points: each of
    15, 15 + 68, 15 + 15 and 15 + 68 + 15 says which blocks a batch carries. 68 alone is a
    68-point model's own points (``fkd-train --points 68``), with nothing after them."""
    if k == DENSE_POINTS:
        return 0, 0
    blocks = {NUM_KEYPOINTS: (0, 0), NUM_KEYPOINTS + DENSE_POINTS: (DENSE_POINTS, 0),
              2 * NUM_KEYPOINTS: (0, NUM_KEYPOINTS), 2 * NUM_KEYPOINTS + DENSE_POINTS: (DENSE_POINTS, NUM_KEYPOINTS)}
    if k not in blocks:
        raise ValueError(f"{k} training points are not 15 keypoints with optional 68 and 15 after them")
    return blocks[k]


def label_flip(k: int) -> tuple[int, ...]:
    """How a mirror relabels ``k`` training points: the 15 keypoints, then the 68 and the
    teacher's 15 where present; or the 68 points alone, mirrored as iBUG pairs them."""
    if k == DENSE_POINTS:
        return IBUG68_FLIP_PERMUTATION
    dense, taught = label_blocks(k)
    perm = FLIP_PERMUTATION
    if dense:
        perm = perm + tuple(NUM_KEYPOINTS + i for i in IBUG68_FLIP_PERMUTATION)
    if taught:
        perm = perm + tuple(NUM_KEYPOINTS + dense + i for i in FLIP_PERMUTATION)
    return perm


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (hi - lo) + lo


def similarity(angle_deg: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
               size: int = CROP_SIZE) -> torch.Tensor:
    """(N, 3, 3) rotations by ``angle_deg`` and scalings about the crop centre, then shifts (N, 2)."""
    c = (size - 1) / 2
    a = torch.deg2rad(angle_deg)
    cs, sn = scale * torch.cos(a), scale * torch.sin(a)
    m = torch.zeros(len(a), 3, 3, device=a.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = cs, -sn, c - cs * c + sn * c + shift[:, 0]
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = sn, cs, c - sn * c - cs * c + shift[:, 1]
    m[:, 2, 2] = 1.0
    return m


def mirror(flip: torch.Tensor, size: int = CROP_SIZE) -> torch.Tensor:
    """(N, 3, 3): x -> size - 1 - x where ``flip`` is true, the identity elsewhere."""
    m = torch.eye(3, device=flip.device).repeat(len(flip), 1, 1)
    m[:, 0, 0] = torch.where(flip, -1.0, 1.0)
    m[:, 0, 2] = torch.where(flip, float(size - 1), 0.0)
    return m


def _pixel_to_normalised(size: int, device: torch.device) -> torch.Tensor:
    """grid_sample's align_corners=False coordinates: pixel centre p -> (2p + 1) / size - 1."""
    return torch.tensor([[2 / size, 0, 1 / size - 1], [0, 2 / size, 1 / size - 1], [0, 0, 1]], device=device)


def resample(images: torch.Tensor, source_to_crop: torch.Tensor, size: int = CROP_SIZE,
             displacement: torch.Tensor | None = None) -> torch.Tensor:
    """Float (N, 1, size, size): each image seen through its source->crop affine (edges repeated).

    ``displacement`` (N, 2, size, size), in crop pixels, moves where each output pixel looks:
    output pixel q shows what the affine alone would put at q + displacement(q).
    """
    src = images.shape[-1]
    theta = _pixel_to_normalised(src, images.device) @ torch.linalg.inv(source_to_crop) \
        @ torch.linalg.inv(_pixel_to_normalised(size, images.device))
    # the sampling grid written out (what affine_grid computes, at a third of its cost on a CPU)
    ax = (torch.arange(size, device=images.device, dtype=theta.dtype) * 2 + 1) / size - 1
    gx, gy = ax[None, None, :], ax[None, :, None]
    if displacement is not None:
        gx, gy = gx + displacement[:, 0] * (2 / size), gy + displacement[:, 1] * (2 / size)
    t = theta[:, :2, :, None, None]
    grid = torch.stack([t[:, i, 0] * gx + t[:, i, 1] * gy + t[:, i, 2] for i in range(2)], dim=-1)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def smooth_field(n: int, spread_px: float, gen: torch.Generator, device: torch.device, cells: int = 4,
                 size: int = CROP_SIZE) -> torch.Tensor:
    """(n, 2, size, size) displacements in crop pixels: Gaussian offsets at the corners of a
    ``cells`` x ``cells`` grid over the crop, spread ``spread_px`` times a per-sample strength in
    [0, 1), interpolated bicubically. Four cells over the crop bend the face as a whole (eyes
    apart, chin down), not its texture."""
    strength = torch.rand(n, generator=gen, device=device)[:, None, None, None]
    lattice = torch.randn((n, 2, cells + 1, cells + 1), generator=gen, device=device) * spread_px * strength
    return F.interpolate(lattice, size=(size, size), mode="bicubic", align_corners=True)


def follow_field(points: torch.Tensor, displacement: torch.Tensor, iterations: int = 24) -> torch.Tensor:
    """Where points (N, K, 2) land once ``displacement`` resamples the crop: the q with
    q + displacement(q) = p, by fixed-point steps. Each step multiplies the error by the
    field's slope, at most 0.7 px per px in a batch at twice the elastic preset's spread
    (measured), so 24 steps leave well under a thousandth of a pixel; they cost nothing next to
    the resampling. A slope of 1 or more would fold the crop over itself; the preset stays far
    below it."""
    size = displacement.shape[-1]
    q = points
    for _ in range(iterations):
        where = ((2 * q + 1) / size - 1)[:, :, None]  # (N, K, 1, 2), grid_sample's coordinates
        d = F.grid_sample(displacement, where, mode="bilinear", padding_mode="border", align_corners=False)
        q = points - d[..., 0].transpose(1, 2)
    return q


def apply(m: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Points (N, K, 2) through affines (N, 3, 3)."""
    return points @ m[:, :2, :2].transpose(1, 2) + m[:, None, :2, 2]


def geometry(faces: DeviceFaces, index: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator):
    """Warped crops (B, 1, 96, 96, float grey levels), moved points (B, K, 2) and swapped masks."""
    b, dev = len(index), faces.context.device
    log_s = math.log(1 + cfg.scale)
    t = similarity(_uniform(b, -cfg.rotate_deg, cfg.rotate_deg, gen, dev),
                   torch.exp(_uniform(b, math.log(1 - cfg.scale), log_s, gen, dev)),
                   torch.stack([_uniform(b, -cfg.shift_px, cfg.shift_px, gen, dev) for _ in range(2)], 1))
    flip = torch.rand(b, generator=gen, device=dev) < cfg.flip
    t = mirror(flip) @ t
    field = smooth_field(b, cfg.elastic_px, gen, dev) if cfg.elastic_px > 0 else None
    images = resample(faces.context[index], t @ faces.to_crop[index], displacement=field)
    points, mask = apply(t, faces.points[index]), faces.mask[index]
    if field is not None:
        points = follow_field(points, field)
    perm = torch.tensor(label_flip(faces.points.shape[1]), device=dev)
    points = torch.where(flip[:, None, None], points[:, perm], points)
    mask = torch.where(flip[:, None], mask[:, perm], mask)
    return images, points, mask


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample Gaussian blur (sigma 0 = none), one grouped separable convolution."""
    if len(x) == 0:
        return x
    r = 4
    taps = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (taps[None] / sigma.clamp(min=1e-3)[:, None]) ** 2)
    k = torch.where(sigma[:, None] > 0, k, (taps[None] == 0).to(x.dtype))
    k = k / k.sum(1, keepdim=True)
    n = len(x)
    y = F.pad(x.reshape(1, n, *x.shape[-2:]), (r, r, r, r), mode="replicate")
    y = F.conv2d(y, k.reshape(n, 1, 1, -1), groups=n)
    y = F.conv2d(y, k.reshape(n, 1, -1, 1), groups=n)
    return y.reshape(x.shape)


#: the sides (px) a low-resolution sample is shrunk to: the small faces YuNet finds in a crowd
LOW_RES_SIDES = (14, 18, 22, 27, 33, 40)


def low_resolution(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability ``p`` a sample is shrunk (area) to one of ``LOW_RES_SIDES`` and enlarged
    back (bilinear), as the crop of a face that small is; one resize pair per side chosen."""
    b, dev, s = len(x), x.device, x.shape[-1]
    side = torch.randint(len(LOW_RES_SIDES), (b,), generator=gen, device=dev)
    pick = torch.rand(b, generator=gen, device=dev) < p
    for k, n in enumerate(LOW_RES_SIDES):
        chosen = torch.nonzero(pick & (side == k)).flatten()
        if len(chosen):
            small = F.interpolate(x[chosen], size=(n, n), mode="area")
            x = x.index_copy(0, chosen, F.interpolate(small, size=(s, s), mode="bilinear", align_corners=False))
    return x


def photometric(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Grey levels 0..255 in and out: resolution, blur, gamma, contrast, brightness, noise, occlusion."""
    b, dev = len(x), x.device
    x = x / 255.0
    if cfg.low_res > 0:
        x = low_resolution(x, cfg.low_res, gen)
    if cfg.blur > 0:  # only the chosen samples are convolved
        pick = torch.rand(b, generator=gen, device=dev) < cfg.blur
        sigma = _uniform(b, 0.5, 1.5, gen, dev)
        x = torch.where(pick[:, None, None, None], _blur(x, torch.where(pick, sigma, 0.0)), x) \
            if dev.type != "cpu" else x.index_put((pick,), _blur(x[pick], sigma[pick]))
    gamma = torch.exp(_uniform(b, -cfg.gamma, cfg.gamma, gen, dev))[:, None, None, None]
    x = x.clamp(0, 1) ** gamma
    contrast = 1 + _uniform(b, -cfg.contrast, cfg.contrast, gen, dev)[:, None, None, None]
    x = (x - 0.5) * contrast + 0.5 + _uniform(b, -cfg.brightness, cfg.brightness, gen, dev)[:, None, None, None]
    if cfg.noise > 0:
        pick = torch.rand(b, generator=gen, device=dev) < cfg.noise
        amp = _uniform(b, 0, 8 / 255, gen, dev)[:, None, None, None]
        if dev.type == "cpu":  # drawing noise is the costly part on a CPU: only for the chosen samples
            x = x.index_put((pick,), x[pick] + amp[pick] * torch.randn(x[pick].shape, generator=gen, device=dev))
        else:  # on a GPU, no data-dependent shapes (they force a sync)
            x = x + torch.where(pick[:, None, None, None], amp, 0.0) * torch.randn(x.shape, generator=gen, device=dev)
    if cfg.occlusion > 0:
        x = occlude(x, cfg.occlusion, gen)
    return (x.clamp(0, 1) * 255.0)


def occlude(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability ``p`` a random rectangle (10-40 % of the side) of flat grey or noise.

    The keypoints under it stay labelled: the network should learn to place hidden points.
    """
    b, dev, s = len(x), x.device, x.shape[-1]
    on = torch.rand(b, generator=gen, device=dev) < p
    w, h = (_uniform(b, 0.1, 0.4, gen, dev) * s for _ in range(2))
    cx, cy = (_uniform(b, 0, s, gen, dev) for _ in range(2))
    ax = torch.arange(s, device=dev, dtype=x.dtype)
    inside = ((ax[None, None, :] - cx[:, None, None]).abs() < w[:, None, None] / 2) & \
             ((ax[None, :, None] - cy[:, None, None]).abs() < h[:, None, None] / 2) & on[:, None, None]
    textured = torch.rand(b, 1, 1, generator=gen, device=dev) < 0.5
    grain = 0.15 * torch.randn((b, s, s), generator=gen, device=dev) * textured
    fill = _uniform(b, 0, 1, gen, dev)[:, None, None] + grain
    return torch.where(inside[:, None], fill[:, None], x)


def augment_batch(faces: DeviceFaces, index: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator):
    """One training batch: (B, 1, 96, 96) float grey levels, (B, K, 2) points, (B, K) mask."""
    images, points, mask = geometry(faces, index, cfg, gen)
    return photometric(images, cfg, gen), points, mask


# -- stand-in negatives for the face score -------------------------------------------------------
def synthetic_patches(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n, 1, 96, 96) grey levels: flat, linear gradients and smooth noise at random scales."""
    s = CROP_SIZE
    kind = torch.randint(0, 3, (n,), generator=gen, device=device)
    base = _uniform(n, 0, 255, gen, device)[:, None, None, None]
    ax = torch.linspace(-1, 1, s, device=device)
    angle = _uniform(n, 0, 2 * math.pi, gen, device)[:, None, None]
    ramp = (torch.cos(angle) * ax[None, None, :] + torch.sin(angle) * ax[None, :, None])[:, None]
    gradient = base + _uniform(n, 20, 120, gen, device)[:, None, None, None] * ramp
    cells = int(torch.randint(2, 24, (1,), generator=gen, device=device))
    noise = F.interpolate(torch.randn((n, 1, cells, cells), generator=gen, device=device), size=(s, s),
                          mode="bilinear", align_corners=False)
    noise = base + _uniform(n, 10, 80, gen, device)[:, None, None, None] * noise
    flat = base + 2 * torch.randn((n, 1, s, s), generator=gen, device=device)
    k = kind[:, None, None, None]
    out = torch.where(k == 0, flat, torch.where(k == 1, gradient, noise))
    return out.clamp(0, 255)


def off_face(faces: DeviceFaces, index: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Crops of the context that are not a framed face: zoomed x2.5 onto a part of it, or its
    crop pushed by half a face or more (the missing side is repeated edge pixels)."""
    b, dev = len(index), faces.context.device
    zoom = torch.rand(b, generator=gen, device=dev) < 0.5
    scale = torch.where(zoom, 2.5, 1.0)
    angle = _uniform(b, 0, 2 * math.pi, gen, dev)
    dist = torch.where(zoom, _uniform(b, 0, 90, gen, dev), _uniform(b, 48, 60, gen, dev))
    shift = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * dist[:, None]
    t = similarity(torch.zeros(b, device=dev), scale, shift)
    return resample(faces.context[index], t @ faces.to_crop[index])


def stand_in_negatives(faces: DeviceFaces, n: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """``n`` negative crops, half synthetic patches, half off-face crops of training contexts."""
    dev = faces.context.device
    k = n // 2
    index = torch.randint(0, len(faces), (n - k,), generator=gen, device=dev)
    x = torch.cat([synthetic_patches(k, gen, dev), off_face(faces, index, gen)])
    return photometric(x, cfg, gen)
