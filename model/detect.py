"""The OpenCV Haar face detector, configured once for training and the live app alike.

Training crops labelled photos through this same detector, so the network learns the
boxes (and their quirks) that the live app will hand it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import cv2
import cv2.data  # the cascade folder; a submodule that cv2 imports itself but its stubs omit
import numpy as np

from fkd.model.crop import box_iou

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels


@dataclass(frozen=True)
class DetectorConfig:
    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    #: smallest face side, as a fraction of the shorter frame side
    min_face: float = 0.08

    def as_dict(self) -> dict:
        return asdict(self)


DETECTOR = DetectorConfig()


def shrink(gray: np.ndarray, max_side: int | None, min_face: float) -> tuple[np.ndarray, float, int]:
    """The frame every detector pass sees: shrunk so its longer side is at most ``max_side``
    (Haar's cost grows with the pixel count), the factor to scale boxes back by, and the
    smallest face side in the shrunk frame's pixels."""
    h, w = gray.shape[:2]
    scale, small = 1.0, gray
    if max_side is not None and max(h, w) > max_side:
        scale = max_side / max(h, w)
        small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return small, scale, max(16, int(min_face * min(small.shape[:2])))


class FaceDetector:
    """Haar cascade run on a grey frame, optionally downscaled first for speed."""

    def __init__(self, config: DetectorConfig = DETECTOR) -> None:
        path = Path(cv2.data.haarcascades) / config.cascade
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"could not load the Haar cascade {path}; is opencv-python<5 installed?")
        self.config = config

    def detect(self, gray: np.ndarray, max_side: int | None = None) -> list[Box]:
        """Faces in ``gray``, largest first, in its own pixels.

        ``max_side`` shrinks the frame so its longer side is at most that many pixels
        before detecting; boxes are scaled back.
        """
        small, scale, min_px = shrink(gray, max_side, self.config.min_face)
        found = self._cascade.detectMultiScale(
            small,
            scaleFactor=self.config.scale_factor,
            minNeighbors=self.config.min_neighbors,
            minSize=(min_px, min_px),
        )
        boxes = [tuple(int(round(v / scale)) for v in b) for b in np.asarray(found).reshape(-1, 4)]
        boxes.sort(key=lambda b: b[2] * b[3], reverse=True)
        return boxes  # type: ignore[return-value]


@dataclass(frozen=True)
class CandidateConfig:
    """Where face candidates come from when the network's face score checks each of them.

    The score, not the cascade, decides whether a face is there, so the cascades may propose
    generously (few neighbours) and from several views. Every pass runs on the frame shrunk
    to ``max_side``; boxes come back in the frame's own pixels.
    """

    #: upright frontal cascades, in order of how well their boxes fit the crop convention
    frontal: tuple[str, ...] = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
    #: the profile cascade finds faces turned one way only; it also runs on the mirrored frame
    profile: str | None = "haarcascade_profileface.xml"
    #: degrees the frame is turned for extra passes of the first frontal cascade (tilted heads)
    angles: tuple[float, ...] = (-25.0, 25.0)
    scale_factor: float = 1.1
    min_neighbors: int = 3
    min_face: float = 0.08  # of the shorter side of the frame
    #: candidates overlapping an earlier one by more than this are the same face
    nms_iou: float = 0.4

    def as_dict(self) -> dict:
        return asdict(self)


CANDIDATES = CandidateConfig()
#: Without a face score nothing checks the candidates: only what the frontal cascade is sure of.
UNCHECKED = CandidateConfig(frontal=(DETECTOR.cascade,), profile=None, angles=(), min_neighbors=DETECTOR.min_neighbors)


def candidate_config(scored: bool) -> CandidateConfig:
    """The candidate passes for weights with (``scored``) or without a face score head."""
    return CANDIDATES if scored else UNCHECKED


def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"could not load the Haar cascade {path}; is opencv-python<5 installed?")
    return cascade


def _rotation(shape: tuple[int, ...], degrees: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The affine turning an image of ``shape`` by ``degrees`` onto a canvas that holds all of it."""
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    cw, ch = int(np.ceil(w * c + h * s)), int(np.ceil(w * s + h * c))
    m[0, 2] += (cw - w) / 2
    m[1, 2] += (ch - h) / 2
    return m, (cw, ch)


def suppress_overlaps(boxes: list[Box], max_iou: float) -> list[Box]:
    """Keep each box unless it overlaps an earlier kept one by more than ``max_iou`` (order = priority)."""
    kept: list[Box] = []
    for box in boxes:
        if all(box_iou(box, k) <= max_iou for k in kept):
            kept.append(box)
    return kept


class CandidateDetector:
    """Face candidates from several Haar passes, merged; each is meant to be checked by the face score.

    The passes, in priority order (``pass_names``): each frontal cascade upright, the profile
    cascade on the frame and on its mirror, and the first frontal cascade on the frame turned
    by each angle (boxes mapped back to the upright frame, same size, same centre). Overlaps
    are merged by keeping the earliest, since frontal boxes frame a face the way the crop
    convention expects. ``calls`` counts detect() calls, for tests and benchmarks.
    """

    def __init__(self, config: CandidateConfig = CANDIDATES) -> None:
        self.config = config
        frontal = [(name.removeprefix("haarcascade_").removesuffix(".xml"), _cascade(name)) for name in config.frontal]
        self._passes: dict[str, Callable[[np.ndarray, int], list[Box]]] = {}
        for name, cascade in frontal:
            self._passes[name] = partial(self._upright, cascade)
        if config.profile:
            profile = _cascade(config.profile)
            self._passes["profile"] = partial(self._upright, profile)
            self._passes["profile_mirrored"] = partial(self._mirrored, profile)
        if frontal:
            for angle in config.angles:
                self._passes[f"{frontal[0][0]}_turned_{angle:+g}"] = partial(self._turned, frontal[0][1], angle)
        self.calls = 0

    @property
    def pass_names(self) -> list[str]:
        return list(self._passes)

    def _upright(self, cascade: cv2.CascadeClassifier, image: np.ndarray, min_px: int) -> list[Box]:
        found = cascade.detectMultiScale(image, scaleFactor=self.config.scale_factor,
                                         minNeighbors=self.config.min_neighbors, minSize=(min_px, min_px))
        boxes: list[Box] = [(int(x), int(y), int(w), int(h)) for x, y, w, h in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)

    def _mirrored(self, cascade: cv2.CascadeClassifier, image: np.ndarray, min_px: int) -> list[Box]:
        width = image.shape[1]
        found = self._upright(cascade, np.ascontiguousarray(image[:, ::-1]), min_px)
        return [(width - x - w, y, w, h) for x, y, w, h in found]

    def _turned(self, cascade: cv2.CascadeClassifier, degrees: float, image: np.ndarray, min_px: int) -> list[Box]:
        m, size = _rotation(image.shape, degrees)
        turned = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        back = cv2.invertAffineTransform(m)
        boxes: list[Box] = []
        for x, y, w, h in self._upright(cascade, turned, min_px):
            cx, cy = back @ np.array([x + w / 2, y + h / 2, 1.0])
            boxes.append((int(round(cx - w / 2)), int(round(cy - h / 2)), w, h))
        return boxes

    def detect(self, gray: np.ndarray, max_side: int | None = None, passes: Sequence[str] | None = None) -> list[Box]:
        """Candidate boxes (x, y, w, h) in ``gray``'s pixels, most trusted first, overlaps merged.

        ``passes`` names the passes to run (default: all), so a caller can spread the costly
        ones over several calls.
        """
        self.calls += 1
        small, scale, min_px = shrink(gray, max_side, self.config.min_face)
        wanted = self.pass_names if passes is None else passes
        boxes = [box for name in self.pass_names if name in wanted for box in self._passes[name](small, min_px)]
        merged = suppress_overlaps(boxes, self.config.nms_iou)
        return [(round(x / scale), round(y / scale), round(bw / scale), round(bh / scale)) for x, y, bw, bh in merged]
