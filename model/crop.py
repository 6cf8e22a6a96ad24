"""The crop convention: detector points -> square 96x96 grey crop, and its exact inverse.

A crop is an integer-aligned square of the frame, resized to ``CROP_SIZE``. Because the
square's corner and side are integers, the map between crop and frame pixels is a pure
scale plus shift with no rounding inside it, so ``to_frame(to_crop(p)) == p`` exactly.
Pixel centres are integers (0-based) in both spaces, matching ``cv2.resize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from fkd.model.schema import DETECTOR_POINTS, INDEX, KAGGLE_MEAN, mirror_points

CROP_SIZE = 96
#: Kaggle's mean layout of the detector's five points (``DETECTOR_POINTS`` order)
DETECTOR_MEAN = KAGGLE_MEAN[[INDEX[name] for name in DETECTOR_POINTS]]


@dataclass(frozen=True)
class CropConvention:
    """How the detector's five points become a face's first crop square.

    The square that puts the five points closest to Kaggle's mean layout
    (``square_from_keypoints``, as the tracker frames a known face from its keypoints), then
    its centre moved by ``shift_x``, ``shift_y`` of its side and its side scaled by ``side``.
    The numbers are calibrated (bench/calibrate_crop.py) so that YuNet's points, cropped this
    way, frame the 300-W faces as their own 15 labelled keypoints would, on average.
    """

    shift_x: float
    shift_y: float
    side: float
    size: int = CROP_SIZE

    def as_dict(self) -> dict:
        return asdict(self)


#: Measured on the shared 300-W photos with model.detect.FaceDetector; see bench/RESULTS.md.
CONVENTION = CropConvention(shift_x=0.0048, shift_y=0.0157, side=1.0401)


@dataclass(frozen=True)
class BoxFraming:
    """How a face box given by a caller (``fkd.Landmarker.landmarks(boxes=...)``) becomes a
    first crop square: centre shift and side, in box widths. Calibrated on YuNet's boxes
    (bench/calibrate_crop.py), the kind of tight face box most detectors give."""

    shift_x: float
    shift_y: float
    side: float


BOX_FRAMING = BoxFraming(shift_x=-0.002, shift_y=-0.019, side=1.251)


@dataclass(frozen=True)
class Square:
    """An integer-aligned square of a frame; may reach outside the frame (padded with black)."""

    x0: int
    y0: int
    side: int

    @property
    def centre(self) -> tuple[float, float]:
        """The square's centre in frame coordinates (its corner plus half the side)."""
        return self.x0 + self.side / 2, self.y0 + self.side / 2

    def scaled(self, factor: float) -> Square:
        """The square with the same centre and ``factor`` times the side (for context crops)."""
        return square_from_center(*self.centre, self.side * factor)

    def iou(self, other: Square) -> float:
        """Intersection over union with ``other``: how much two squares frame the same thing."""
        return box_iou(self.as_box(), other.as_box())

    def as_box(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.side, self.side)


def box_iou(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0 when either is empty."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def square_from_center(cx: float, cy: float, side: float) -> Square:
    side_i = max(1, int(round(side)))
    return Square(int(round(cx - side_i / 2)), int(round(cy - side_i / 2)), side_i)


def square_from_box(box: Sequence[float], conv: BoxFraming = BOX_FRAMING) -> Square:
    """Turn a caller's face box into a first crop square (the keypoints' square follows)."""
    x, y, w, h = (float(v) for v in box)
    cx = x + w / 2 + conv.shift_x * w
    cy = y + h / 2 + conv.shift_y * w
    return square_from_center(cx, cy, conv.side * w)


def fit_square(points: np.ndarray, template: np.ndarray, mask: np.ndarray | None = None,
               size: int = CROP_SIZE) -> Square:
    """The square whose ``size``-px crop puts these frame points closest to ``template`` (the
    same points' mean layout in crop pixels): least squares over scale and shift.

    Every framing in fkd is this fit against some template: the 15 keypoints against Kaggle's
    mean layout, the 68 points against the whole-face layout (``fkd.model.points``), and the
    detector's five points against either's five.
    """
    p = np.asarray(points, dtype=np.float64)
    k = np.asarray(template, dtype=np.float64)
    if mask is not None:
        keep = np.asarray(mask, dtype=bool)
        p, k = p[keep], k[keep]
    if len(p) < 2:
        raise ValueError("need at least two keypoints to place a crop")
    pc, kc = p - p.mean(0), k - k.mean(0)
    a = float((pc * kc).sum() / max((pc * pc).sum(), 1e-9))  # crop px per frame px
    if not np.isfinite(a) or a <= 0:
        raise ValueError("keypoints are degenerate; cannot place a crop")
    # crop = (frame - x0 + 0.5) * a - 0.5 with a = size / side; solve the centre from the means
    centre_crop = (size - 1) / 2
    frame_centre = p.mean(0) + (centre_crop - k.mean(0)) / a
    return square_from_center(frame_centre[0] + 0.5, frame_centre[1] + 0.5, size / a)


def square_from_keypoints(points: np.ndarray, mask: np.ndarray | None = None) -> Square:
    """The square whose crop puts these 15 frame keypoints closest to Kaggle's mean layout.

    Least squares over scale and shift. The live tracker builds the next frame's crop this
    way, and training uses it where the detector missed a labelled face.
    """
    return fit_square(points, KAGGLE_MEAN, mask)


def square_from_landmarks(points5: np.ndarray, conv: CropConvention = CONVENTION,
                          template5: np.ndarray | None = None) -> Square:
    """The first crop square of a face from the detector's five points (``DETECTOR_POINTS``,
    frame pixels): their square against ``template5`` (the five's mean layout in the crop;
    Kaggle's unless told), moved and scaled by the calibrated convention."""
    sq = fit_square(points5, DETECTOR_MEAN if template5 is None else template5)
    cx, cy = sq.centre
    return square_from_center(cx + conv.shift_x * sq.side, cy + conv.shift_y * sq.side, conv.side * sq.side)


def to_crop(points: np.ndarray, square: Square, size: int = CROP_SIZE) -> np.ndarray:
    """Frame pixel coordinates -> crop pixel coordinates (any leading shape, last dim 2)."""
    p = np.asarray(points, dtype=np.float64)
    k = size / square.side
    return (p - (square.x0, square.y0) + 0.5) * k - 0.5


def to_frame(points: np.ndarray, square: Square, size: int = CROP_SIZE) -> np.ndarray:
    """Crop pixel coordinates -> frame pixel coordinates; the exact inverse of ``to_crop``."""
    p = np.asarray(points, dtype=np.float64)
    k = square.side / size
    return (p + 0.5) * k - 0.5 + (square.x0, square.y0)


def crop_face(gray: np.ndarray, square: Square, size: int = CROP_SIZE) -> np.ndarray:
    """Cut ``square`` out of a grey frame, padding with black outside it, resized to size x size."""
    if gray.ndim != 2:
        raise ValueError(f"expected a single-channel image, got shape {gray.shape}")
    h, w = gray.shape
    x0, y0, s = square.x0, square.y0, square.side
    x1, y1 = x0 + s, y0 + s
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        roi = gray[y0:y1, x0:x1]
    else:
        roi = np.zeros((s, s), dtype=gray.dtype)
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if ix1 > ix0 and iy1 > iy0:
            roi[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = gray[iy0:iy1, ix0:ix1]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(roi, (size, size), interpolation=interp)


def flip_crop(image: np.ndarray, points: np.ndarray | None = None, size: int = CROP_SIZE):
    """Mirror a crop left-right; points (if given) are mirrored and relabelled."""
    flipped = np.ascontiguousarray(image[..., ::-1])
    if points is None:
        return flipped
    return flipped, mirror_points(points, size)


#: An upright crop is cut from a square this many times the keypoint square's side, so that a
#: crop turned by any angle still lies inside it (half the diagonal is 0.71 sides).
UPRIGHT_CONTEXT = 1.5


def similarity_to_mean(points: np.ndarray, template: np.ndarray = KAGGLE_MEAN) -> np.ndarray:
    """(3, 3) frame -> crop similarity that puts these frame keypoints closest to ``template``
    (Kaggle's mean layout unless told): rotation, scale and shift by least squares (in complex
    numbers z -> a z + b).

    ``square_from_keypoints`` fits scale and shift only; turning the crop as well shows the
    network a tilted head upright, as most of its training faces are.
    """
    p, t = np.asarray(points, dtype=np.float64), np.asarray(template, dtype=np.float64)
    z, m = p[:, 0] + 1j * p[:, 1], t[:, 0] + 1j * t[:, 1]
    zc, mc = z - z.mean(), m - m.mean()
    energy = float((np.abs(zc) ** 2).sum())
    a = (np.conj(zc) * mc).sum() / energy if energy > 1e-9 else 0j
    if not np.isfinite(a) or abs(a) < 1e-9:
        raise ValueError("keypoints are degenerate; cannot place a crop")
    b = m.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag], [0.0, 0.0, 1.0]])


def upright_crop(gray: np.ndarray, points: np.ndarray, size: int = CROP_SIZE,
                 template: np.ndarray = KAGGLE_MEAN) -> tuple[np.ndarray, np.ndarray]:
    """A crop turned and scaled so that ``points`` land on ``template`` (Kaggle's mean layout of
    the 15 unless told), and its (3, 3) frame -> crop matrix (``apply_matrix`` with its inverse
    maps answers back).

    The frame is first cut to a context square at about the crop's scale with ``crop_face``
    (area resampling, so a large photo does not alias), then turned with bilinear sampling,
    as the training augmentation turns its context crops.
    """
    matrix = similarity_to_mean(points, template)
    context = fit_square(points, template).scaled(UPRIGHT_CONTEXT)
    n = int(round(size * UPRIGHT_CONTEXT))
    patch = crop_face(gray, context, n)
    k = context.side / n  # frame px per patch px; frame = (patch + 0.5) k - 0.5 + corner
    patch_to_frame = np.array([[k, 0.0, context.x0 + 0.5 * k - 0.5], [0.0, k, context.y0 + 0.5 * k - 0.5],
                               [0.0, 0.0, 1.0]])
    crop = cv2.warpAffine(patch, (matrix @ patch_to_frame)[:2], (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, matrix


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (..., 2) through a (3, 3) affine matrix."""
    p = np.asarray(points, dtype=np.float64)
    return p @ matrix[:2, :2].T + matrix[:2, 2]
