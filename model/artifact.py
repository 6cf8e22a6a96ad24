"""The weights file and its ONNX twin, read without torch: the pair, its metadata, and the Predictor.

A weights file is TorchScript (``fkd.pt``) with its metadata inside (``fkd.json``); its ONNX
twin (``fkd.onnx``, beside it) carries the same metadata and the SHA-256 of the ``.pt`` it was
exported from, in its ``metadata_props``. The live app, the photo tool and the Python API read
both the metadata and the network from the twin through onnxruntime, so they start without
importing torch (the largest import by far, bench/startup.py). Only a missing or stale twin,
or an explicit ``runtime="torchscript"``, loads torch, lazily, through ``fkd.model.torch_weights``.
Loading refuses weights whose metadata does not fit this version of fkd (the checks live in
``fkd.model.metadata``, which ``torch_weights`` shares, so neither of the two imports the other
at module level).
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from fkd.model.crop import CROP_SIZE
from fkd.model.errors import FkdError, UsageError
from fkd.model.extras import TRAIN_INSTALL, require_train_extra
from fkd.model.metadata import (
    DEFAULT_THRESHOLD,
    META_NAME,
    OUTPUTS,
    PT_TAG,
    default_weights,
    label_x_offset,
    parse_metadata,
    point_set_of,
    sha256,
)
from fkd.model.points import PointSet

RUNTIMES = ("auto", "onnx", "torchscript")


def add_label_offset(keypoints: np.ndarray, x_offset: np.ndarray) -> np.ndarray:
    """(..., K, 2) keypoints as float32 with ``x_offset`` (K,) added to x: the one place it is applied."""
    out = np.array(keypoints, np.float32, copy=True)
    out[..., 0] += x_offset
    return out


def pair(path: Path) -> tuple[Path, Path]:
    """(TorchScript file, ONNX twin) for a weights path given as either of them."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return path.with_suffix(".pt"), path
    return path, path.with_suffix(".onnx")


@dataclass
class Twin:
    """The outcome of opening the ONNX twin: a session and its metadata, or why it cannot be used."""

    session: Any = None
    meta: dict | None = None
    problem: str = ""  # a clause (no full stop) saying why the twin is unusable; empty when usable


def open_twin(path: Path, threads: int | None = None) -> Twin:
    """The one loader of the ONNX twin: session, checked metadata, and the stale-twin guard.

    A twin is usable when onnxruntime reads it, it carries fkd metadata, and its hash tag is that
    of the TorchScript file beside it (if that file exists: an ``.onnx`` alone is taken as is).
    Metadata that does not fit this fkd is an error, not a reason to fall back.
    """
    pt, onnx = pair(path)
    if not onnx.is_file():
        return Twin(problem=f"{onnx} (the ONNX twin of {pt}) does not exist")
    if find_spec("onnxruntime") is None:
        return Twin(problem=f"onnxruntime is not installed, so {onnx} cannot be used")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
    except Exception:
        return Twin(problem=f"{onnx} is not a readable ONNX model")
    tags = session.get_modelmeta().custom_metadata_map
    if META_NAME not in tags:
        return Twin(problem=f"{onnx} carries no fkd metadata")
    if pt.is_file() and tags.get(PT_TAG) != sha256(pt):
        return Twin(problem=f"{onnx} was not exported from {pt} (stale twin: its hash tag differs)")
    outputs = [o.name for o in session.get_outputs()]
    if outputs[:1] != [OUTPUTS[0]]:
        return Twin(problem=f"{onnx} has outputs {outputs}, not fkd's {list(OUTPUTS)}")
    return Twin(session=session, meta=parse_metadata(tags[META_NAME], onnx))


def read_metadata(path: Path) -> dict:
    """The checked metadata of a weights file: from its ONNX twin when fresh (no torch), else its TorchScript."""
    pt, onnx = pair(path)
    if not pt.is_file() and not onnx.is_file():
        raise FkdError(f"weights file {path} does not exist.")
    twin = open_twin(path, threads=1)
    if twin.meta is not None:
        return twin.meta
    if not pt.is_file():
        raise FkdError(f"{twin.problem}.")
    require_torch(f"reading {pt} without its ONNX twin")
    from fkd.model import torch_weights

    return torch_weights.read_metadata(pt)


def require_torch(what: str) -> None:
    """One sentence naming the train extra when torch is not installed."""
    require_train_extra(what, ("torch",))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow warnings for large logits."""
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


class Predictor:
    """Batches of 96x96 grey crops -> keypoints in crop pixels (and face scores), on the fastest runtime.

    ``runtime="auto"`` uses onnxruntime when the ONNX twin sits beside the weights and carries
    the TorchScript file's hash, and then never imports torch; a missing or stale twin is
    reported in one sentence on stderr and TorchScript runs instead (torch is needed for that).
    ``"onnx"`` insists on the twin; ``"torchscript"`` insists on torch. Measured in bench/latency.py
    and bench/startup.py.

    ``flip=True`` also runs each crop mirrored, in the same batch, and averages the two answers
    (the mirrored one mapped back): 2.3 % lower validation NME for twice the network's time
    (bench/flip_average.py). Photos take it by default, the live app does not.

    The weights' ``label_offset`` (metadata) is added after the averaging: inside the network the
    mirrored pass would cancel it (``fkd.train.teachers.label_offset`` says why it is needed at all).

    The metadata says which points the network gives (``self.points``: Kaggle's 15 or iBUG's
    68), and the output shape, the mirror's relabelling and the offset follow it. ``points``
    picks the shipped model of that many points when no path is given, and with a path insists
    that the file gives that many (``--points 68`` with a 15-point file is refused).
    """

    def __init__(self, path: Path | None = None, runtime: str = "auto", threads: int | None = None,
                 flip: bool = False, points: int | None = None) -> None:
        self.flip = flip
        self.asked_points = points
        if runtime not in RUNTIMES:
            raise UsageError(f"--runtime must be auto, onnx or torchscript, not {runtime!r}.")
        if points is not None and points not in (15, 68):
            raise UsageError(f"--points must be 15 or 68, not {points}.")
        self.path = Path(path) if path is not None else default_weights(points or 15)
        pt, onnx = pair(self.path)
        if not pt.is_file() and not onnx.is_file():
            raise FkdError(f"weights file {self.path} does not exist.")
        self._session: Any = None
        self._module: Any = None
        note = ""
        if runtime != "torchscript":
            twin = open_twin(self.path, threads)
            if twin.session is not None and twin.meta is not None:
                self._use_onnx(twin.session, twin.meta)
                return
            if runtime == "onnx":
                raise FkdError(f"--runtime onnx cannot run: {twin.problem}.")
            if not pt.is_file():
                raise FkdError(f"{twin.problem}, and {pt} is not there to fall back on.")
            if find_spec("torch") is None:
                raise FkdError(f"{twin.problem}, and the TorchScript fallback needs torch: {TRAIN_INSTALL}.")
            note = f"note: {twin.problem}, so {pt.name} runs on TorchScript (slower to start)."
        elif not pt.is_file():
            raise FkdError(f"--runtime torchscript needs {pt}, which does not exist.")
        require_torch("--runtime torchscript")
        self._use_torchscript(pt, threads)
        if note:  # only once the TorchScript file has loaded: a broken one gets its own single sentence
            print(note, file=sys.stderr)

    def _use_onnx(self, session: Any, meta: dict) -> None:
        self.runtime = "onnx"
        self.meta = meta
        self._session = session
        self.has_score = OUTPUTS[1] in [o.name for o in session.get_outputs()]
        self._finish()

    def _use_torchscript(self, pt: Path, threads: int | None) -> None:
        from fkd.model import torch_weights

        self.runtime = "torchscript"
        self.meta = torch_weights.read_metadata(pt)
        self._module, self.has_score = torch_weights.load_for_inference(pt, threads)
        self._finish()

    def _finish(self) -> None:
        self.points: PointSet = point_set_of(self.meta, self.path)
        if self.asked_points is not None and self.asked_points != self.points.count:
            raise UsageError(f"--points {self.asked_points} needs a {self.asked_points}-point weights file, and "
                             f"{self.path} predicts {self.points.count} points.")
        self.threshold = float(self.meta.get("face_score", {}).get("threshold", DEFAULT_THRESHOLD))
        self.x_offset = label_x_offset(self.meta, self.path)
        self._probe()

    def _probe(self) -> None:
        """Run one blank crop: another network under fkd's metadata fails here, in one sentence,
        rather than with a shape error deep in the live loop."""
        want = (2, self.points.count, 2)
        try:
            keypoints, scores = self.run(np.zeros((2, CROP_SIZE, CROP_SIZE), np.float32))
            ok = keypoints.shape == want and scores.shape == (2,)
        except Exception:  # any failure of a foreign network is the same verdict
            ok = False
        if not ok:
            raise FkdError(f"weights file {self.path} is not a working fkd network: it does not map 96x96 crops "
                           f"to {self.points.count} keypoints.")

    def run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 96, 96) uint8 or float crops -> ((N, K, 2) float32 crop-pixel points, (N,) float32 scores).

        A score is the probability that the crop holds a face (sigmoid of the face logit); weights
        without a score head give 1.0 for every crop. With ``flip`` the keypoints are the mean of
        the crop's and its mirror's; the score stays the plain crop's, the one its threshold was
        calibrated on.
        """
        x = np.ascontiguousarray(crops, dtype=np.float32).reshape(-1, 1, CROP_SIZE, CROP_SIZE)
        if len(x) == 0:
            return np.zeros((0, self.points.count, 2), np.float32), np.zeros(0, np.float32)
        if self.flip:
            keypoints, scores = self._forward(np.concatenate([x, x[..., ::-1]]))
            n = len(x)
            keypoints, scores = (keypoints[:n] + self.points.mirror(keypoints[n:], CROP_SIZE)) / 2, scores[:n]
        else:
            keypoints, scores = self._forward(x)
        return add_label_offset(keypoints, self.x_offset), scores

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One pass of the network over (N, 1, 96, 96) float32 crops."""
        if self._session is not None:
            outputs = self._session.run(None, {"crops": x})
        else:
            from fkd.model import torch_weights

            outputs = torch_weights.run(self._module, x)
        keypoints = np.asarray(outputs[0], np.float32)
        scores = sigmoid(np.asarray(outputs[1]).reshape(-1)) if self.has_score else np.ones(len(x), np.float32)
        return keypoints, scores

    def with_flip(self, flip: bool) -> Predictor:
        """This predictor with flip averaging on or off, sharing the loaded network (no reload)."""
        other = copy.copy(self)
        other.flip = flip
        return other

    def without_label_offset(self) -> Predictor:
        """This predictor giving the network's own answer, without the weights' label offset (to measure it)."""
        other = copy.copy(self)
        other.x_offset = np.zeros(self.points.count, np.float32)
        return other

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(N, 96, 96) uint8 or float crops -> (N, K, 2) float32 crop-pixel points."""
        return self.run(crops)[0]

    def kaggle15(self, crops: np.ndarray) -> np.ndarray:
        """(N, 96, 96) crops -> (N, 15, 2) Kaggle keypoints: the network's own, or those its 68 give
        by the mapping in ``fkd.model.schema`` (for fkd-submit and the 15-point figures)."""
        return self.points.kaggle15(self(crops)).astype(np.float32)
