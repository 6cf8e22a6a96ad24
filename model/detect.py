"""The face detector: OpenCV's YuNet CNN, configured once for training, photos and the live app.

Training crops labelled photos through this same detector, so the network learns the crops
that the live app and fkd-predict will hand it. YuNet (Shiqi Yu et al., 2023; the OpenCV
Model Zoo's face detector, MIT licence, ``model/yunet/``) runs through ``cv2.FaceDetectorYN``,
which OpenCV 4.5.4+ and OpenCV 5 both have, so fkd needs no Haar cascades and no pin below 5.

It proposes; it does not decide. Its own score threshold is low, and the network's face
score keeps or drops each candidate (``realtime.pipeline``). Each candidate comes with five
points (eye centres, nose tip, mouth corners), which frame its first crop exactly as the
live tracker frames a known face from its keypoints (``Detection.square``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from fkd.model.crop import Square, square_from_landmarks
from fkd.model.errors import FkdError

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
#: OpenCV Zoo's release of that file; anything else is refused (model/yunet/README.md)
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
#: YuNet finds faces down to about this side (pixels of the image it is given) reliably, so a
#: frame is shrunk only until the smallest face sought is this size.
YUNET_SMALLEST = 20


def yunet_path() -> Path:
    """The shipped YuNet model, inside the installed package (model/yunet/ in a checkout)."""
    return Path(str(resources.files("fkd.model") / "yunet" / YUNET_FILE))


@dataclass(frozen=True)
class DetectorConfig:
    """What the detector is and how eagerly it proposes; weights record it in their metadata."""

    model: str = YUNET_FILE
    sha256: str = YUNET_SHA256
    #: YuNet's own score a box needs to be proposed (the face score decides afterwards)
    score: float = 0.5
    #: YuNet's non-maximum suppression between its own boxes
    nms_iou: float = 0.3

    def as_dict(self) -> dict:
        return asdict(self)


DETECTOR = DetectorConfig()


@dataclass(frozen=True)
class Detection:
    """One proposed face: YuNet's box, its five points and its own score, in frame pixels."""

    box: Box
    #: (5, 2): right eye, left eye, nose tip, right and left mouth corner (the subject's sides)
    landmarks: np.ndarray = field(repr=False)
    score: float

    @property
    def square(self) -> Square:
        """The crop square of this face's first look, framed from its five points."""
        return square_from_landmarks(self.landmarks)


def check_model(path: Path) -> None:
    """Refuse a missing, unreadable or altered YuNet file, in one sentence."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise FkdError(f"the face detector model {path} cannot be read ({e.strerror}); reinstall fkd.") from None
    if hashlib.sha256(data).hexdigest() != YUNET_SHA256:
        raise FkdError(f"the face detector model {path} is not YuNet's 2023mar release (its sha256 differs); "
                       "reinstall fkd.")


def detection_scale(shape: tuple[int, ...], min_face: int, max_side: int | None) -> float:
    """How much the frame is shrunk before YuNet sees it: until a ``min_face`` face is
    ``YUNET_SMALLEST`` pixels (YuNet's cost grows with the pixel count) and the longer side is
    at most ``max_side``; never enlarged."""
    scale = min(1.0, YUNET_SMALLEST / max(min_face, 1))
    if max_side is not None:
        scale = min(scale, max_side / max(shape[:2]))
    return scale


class FaceDetector:
    """YuNet on any frame, grey or colour; not shared between threads (one per worker)."""

    def __init__(self, config: DetectorConfig = DETECTOR, model: Path | None = None) -> None:
        path = yunet_path() if model is None else Path(model)
        check_model(path)
        self.config = config
        # OpenCV 5 logs a warning for every detector it builds (its new graph engine ignores the
        # target setting FaceDetectorYN makes): not the user's concern, so errors only meanwhile
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), config.score, config.nms_iou, 5000)
        finally:
            cv2.utils.logging.setLogLevel(level)
        self._size = (320, 320)
        self.calls = 0  # detect() calls, for tests and benchmarks

    def detect(self, image: np.ndarray, min_face: int, max_side: int | None = None) -> list[Detection]:
        """Faces in ``image`` (BGR, BGRA or grey), surest first, in its own pixels.

        ``min_face`` (the smallest face side sought, in frame pixels) and ``max_side`` set the
        size the frame is shrunk to first (``detection_scale``); the callers' own settings say
        why they look as they do (fkd-live and fkd-predict: ``--min-face``).
        """
        self.calls += 1
        bgr = _as_bgr(image)
        scale = detection_scale(bgr.shape, min_face, max_side)
        if scale < 1.0:
            h, w = bgr.shape[:2]
            bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, found = self._net.detect(bgr)
        if found is None:
            return []
        out = []
        for row in np.asarray(found, np.float64):
            x, y, w, h = row[:4] / scale
            out.append(Detection((int(round(x)), int(round(y)), int(round(w)), int(round(h))),
                                 row[4:14].reshape(5, 2) / scale, float(row[14])))
        out.sort(key=lambda d: d.score, reverse=True)
        return out


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """YuNet takes three channels: grey is repeated, an alpha channel dropped."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    return image
