"""What a weights file says about itself, and the checks that refuse one that does not fit.

The one home of the metadata's format (``fkd.json``), its checks and the file hash that ties an
ONNX twin to its TorchScript file. It imports neither torch nor onnxruntime, so both sides of
the weights file use it without importing each other: ``fkd.model.artifact`` reads weights (no
torch) and ``fkd.model.torch_weights`` writes and loads them (torch).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np

from fkd import __version__
from fkd.model.crop import CROP_SIZE
from fkd.model.detect import DETECTOR
from fkd.model.errors import FkdError
from fkd.model.points import KAGGLE15, PointSet, points_of

FORMAT = "fkd-keypoints/1"
META_NAME = "fkd.json"  # the metadata's name in the TorchScript archive and key in the ONNX metadata_props
PT_TAG = "fkd_pt_sha256"  # ONNX metadata_props key: the hash of the TorchScript file the twin was exported from
#: the network's outputs, in order; weights without a score head have only the first
OUTPUTS = ("keypoints", "face_logit")
DEFAULT_THRESHOLD = 0.5
#: metadata key: per keypoint, crop px added to x after any flip averaging (fkd.train.teachers.label_offset)
LABEL_OFFSET = "label_offset"

#: inputs are raw grey levels 0..255; the network normalises them itself with these (kept here,
#: not in net.py, because the metadata records them and must be written and read without torch)
PIXEL_MEAN = 127.5
PIXEL_STD = 64.0


#: where each shipped model lives inside the package, by point count: the 15-point model at the
#: top of weights/ (as since the first release), the 68-point one in its own folder with its card
SHIPPED = {15: ("fkd.pt",), 68: ("fkd68", "fkd.pt")}


def default_weights(points: int = 15) -> Path:
    """The shipped model of ``points`` points (15 or 68), inside the installed package (weights/ in
    a checkout)."""
    return Path(str(resources.files("fkd.weights").joinpath(*SHIPPED[points])))


def base_metadata(points: PointSet = KAGGLE15) -> dict:
    """What every weights file must agree on with the code that loads it: for ``points``' model,
    its points (names, count, flip partners) and its crop."""
    return {
        "format": FORMAT,
        "fkd_version": __version__,
        "keypoints": list(points.names),
        "points": points.metadata(),
        "input": {"size": [CROP_SIZE, CROP_SIZE], "channels": 1, "dtype": "float32",
                  "range": "grey levels 0..255", "layout": "N,1,H,W"},
        "normalisation": {"mean": PIXEL_MEAN, "std": PIXEL_STD, "inside_model": True},
        "output": f"N,{points.count},2 keypoints (x, y) in crop pixels, pixel centres 0-based",
        "crop_convention": points.convention.as_dict(),
        "detector": DETECTOR.as_dict(),
    }


def point_set_of(meta: dict, path: Path) -> PointSet:
    """The point set weights declare, checked: their names must be one this fkd serves, in its
    order, and a ``points`` block (every file since the 68-point model; optional for the 15,
    whose older files have none) must agree with it on count and flip partners."""
    try:
        points = points_of(meta)
    except ValueError:
        raise FkdError(f"weights file {path} predicts other keypoints than fkd serves (Kaggle's 15 or iBUG's 68, "
                       "in their order).") from None
    declared = meta.get("points")
    if declared is None and points is not KAGGLE15:
        raise FkdError(f"weights file {path} does not declare its {points.count} points' flip partners.")
    if declared is not None and declared != points.metadata():
        raise FkdError(f"weights file {path} declares {points.count} points with other flip partners or count "
                       "than fkd's.")
    return points


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parse_metadata(text: str, path: Path) -> dict:
    """The checked metadata of ``path`` from its ``fkd.json`` text (from either file of the pair)."""
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        raise FkdError(f"weights file {path} has unreadable fkd metadata.") from None
    if not isinstance(meta, dict):
        raise FkdError(f"weights file {path} has unreadable fkd metadata.")
    check_metadata(meta, path)
    return meta


def check_metadata(meta: dict, path: Path) -> None:
    """Refuse weights trained for other keypoints, input or crops than this fkd makes."""
    if meta.get("format") != FORMAT:
        raise FkdError(f"weights file {path} has format {meta.get('format')!r}; this fkd reads {FORMAT!r}.")
    want = base_metadata(point_set_of(meta, path))
    given = meta.get("input")
    size = given.get("size") if isinstance(given, dict) else None
    if size != want["input"]["size"]:
        raise FkdError(f"weights file {path} expects {size} inputs, not 96x96.")
    conv = meta.get("crop_convention")
    if not isinstance(conv, dict) or any(
            not isinstance(conv.get(k), (int, float)) or not abs(conv[k] - v) <= 1e-6
            for k, v in want["crop_convention"].items()):
        raise FkdError(f"weights file {path} was trained on a different crop convention ({conv}); retrain it.")
    score = meta.get("face_score", {})
    threshold = score.get("threshold", DEFAULT_THRESHOLD) if isinstance(score, dict) else None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise FkdError(f"weights file {path} has a face_score threshold that is not a probability ({score}).")
    if LABEL_OFFSET in meta:
        label_x_offset(meta, path)


def label_x_offset(meta: dict, path: Path) -> np.ndarray:
    """The (K,) x shift, in crop px, that weights ask to be added to their K points (zeros if none).

    Why it exists and how it is measured: ``fkd.train.teachers.label_offset``. Anything but K finite
    numbers smaller than the crop is refused: it would move every point fkd reports.
    """
    count = len(meta.get("keypoints") or ())
    entry = meta.get(LABEL_OFFSET)
    if entry is None:
        return np.zeros(count, np.float32)
    xs = entry.get("x_px") if isinstance(entry, dict) else None
    ok = isinstance(xs, list) and len(xs) == count and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < CROP_SIZE for v in xs)
    if not ok:
        raise FkdError(f"weights file {path} has a label_offset that is not {count} x shifts within the 96-px crop.")
    return np.asarray(xs, np.float32)
