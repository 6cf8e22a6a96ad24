"""The weights file: TorchScript with its metadata inside, an optional ONNX twin, and a Predictor.

The metadata travels in the TorchScript archive (``fkd.json``), so a file can never be
separated from the keypoint order, input size and crop convention it was trained with.
Loading refuses a file whose metadata does not fit this version of fkd.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from fkd import __version__
from fkd.model.crop import CONVENTION, CROP_SIZE
from fkd.model.detect import DETECTOR
from fkd.model.errors import FkdError
from fkd.model.net import PIXEL_MEAN, PIXEL_STD
from fkd.model.schema import KEYPOINTS

FORMAT = "fkd-keypoints/1"
META_NAME = "fkd.json"


def default_weights() -> Path:
    """The shipped model, inside the installed package (weights/ in a checkout)."""
    return Path(str(resources.files("fkd.weights") / "fkd.pt"))


def base_metadata() -> dict:
    """What every weights file must agree on with the code that loads it."""
    return {
        "format": FORMAT,
        "fkd_version": __version__,
        "keypoints": list(KEYPOINTS),
        "input": {"size": [CROP_SIZE, CROP_SIZE], "channels": 1, "dtype": "float32",
                  "range": "grey levels 0..255", "layout": "N,1,H,W"},
        "normalisation": {"mean": PIXEL_MEAN, "std": PIXEL_STD, "inside_model": True},
        "output": "N,15,2 keypoints (x, y) in crop pixels, pixel centres 0-based",
        "crop_convention": CONVENTION.as_dict(),
        "detector": DETECTOR.as_dict(),
    }


def _atomic_path(path: Path):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; weights are meant to be shared
    return Path(tmp)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export(model: torch.nn.Module, path: Path, extra: dict, onnx: bool = True) -> dict:
    """Write ``path`` (TorchScript + metadata) and, if asked, ``path.onnx`` beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**base_metadata(), **extra}
    model = model.to("cpu").eval()
    scripted = torch.jit.script(model)
    tmp = _atomic_path(path)
    torch.jit.save(scripted, str(tmp), _extra_files={META_NAME: json.dumps(meta, indent=1)})
    os.replace(tmp, path)
    if onnx:
        export_onnx(model, path.with_suffix(".onnx"), meta, sha256(path))
    return meta


def export_onnx(model: torch.nn.Module, path: Path, meta: dict, pt_sha256: str) -> None:
    """The same network for onnxruntime, tagged with the hash of the TorchScript file it twins."""
    import onnx  # only needed to write ONNX files

    tmp = _atomic_path(path)
    x = torch.zeros(1, 1, CROP_SIZE, CROP_SIZE)
    with warnings.catch_warnings():  # the TorchScript-based exporter is chosen on purpose: no onnxscript needed
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), str(tmp), input_names=["crops"], output_names=["keypoints"],
                          dynamic_axes={"crops": {0: "n"}, "keypoints": {0: "n"}}, opset_version=17,
                          dynamo=False)
    proto = onnx.load(str(tmp))
    for key, value in ((META_NAME, json.dumps(meta)), ("fkd_pt_sha256", pt_sha256)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)


def read_metadata(path: Path) -> dict:
    """The metadata of a weights file, or one clear sentence on why it is not usable."""
    path = Path(path)
    if not path.is_file():
        raise FkdError(f"weights file {path} does not exist.")
    files = {META_NAME: ""}
    try:
        torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    except Exception:
        raise FkdError(f"weights file {path} is not a TorchScript archive (corrupt or another format).") from None
    if not files[META_NAME]:
        raise FkdError(f"weights file {path} is TorchScript but carries no fkd metadata; it is not an fkd model.")
    try:
        meta = json.loads(files[META_NAME])
    except json.JSONDecodeError:
        raise FkdError(f"weights file {path} has unreadable fkd metadata.") from None
    check_metadata(meta, path)
    return meta


def check_metadata(meta: dict, path: Path) -> None:
    """Refuse weights trained for other keypoints, input or crops than this fkd makes."""
    want = base_metadata()
    if meta.get("format") != FORMAT:
        raise FkdError(f"weights file {path} has format {meta.get('format')!r}; this fkd reads {FORMAT!r}.")
    if meta.get("keypoints") != want["keypoints"]:
        raise FkdError(f"weights file {path} predicts other keypoints than fkd's 15 Kaggle points.")
    if meta.get("input", {}).get("size") != want["input"]["size"]:
        raise FkdError(f"weights file {path} expects {meta.get('input', {}).get('size')} inputs, not 96x96.")
    conv = meta.get("crop_convention", {})
    if any(abs(conv.get(k, np.inf) - v) > 1e-6 for k, v in want["crop_convention"].items()):
        raise FkdError(f"weights file {path} was trained on a different crop convention ({conv}); retrain it.")


def load(path: Path | None = None) -> tuple[torch.jit.ScriptModule, dict]:
    """The TorchScript module and its checked metadata."""
    path = Path(path) if path is not None else default_weights()
    meta = read_metadata(path)
    module = torch.jit.load(str(path), map_location="cpu")
    return module.eval(), meta


class Predictor:
    """Batches of 96x96 grey crops -> keypoints in crop pixels, on the fastest runtime at hand.

    onnxruntime is used when the ONNX twin of the weights sits beside them and carries the
    TorchScript file's hash; otherwise frozen TorchScript. Measured in bench/latency.py.
    """

    def __init__(self, path: Path | None = None, runtime: str = "auto", threads: int | None = None) -> None:
        self.path = Path(path) if path is not None else default_weights()
        self.meta = read_metadata(self.path)
        if threads is not None:
            torch.set_num_threads(threads)
        self.runtime = self._pick_runtime(runtime, threads)
        if self.runtime == "torchscript":
            module = torch.jit.load(str(self.path), map_location="cpu").eval()
            self._module = torch.jit.optimize_for_inference(torch.jit.freeze(module))

    def _pick_runtime(self, runtime: str, threads: int | None) -> str:
        if runtime not in ("auto", "onnx", "torchscript"):
            raise FkdError(f"--runtime must be auto, onnx or torchscript, not {runtime!r}.")
        onnx_path = self.path.with_suffix(".onnx")
        if runtime == "torchscript" or (runtime == "auto" and not onnx_path.is_file()):
            return "torchscript"
        try:
            import onnxruntime as ort
        except ImportError:
            if runtime == "onnx":
                raise FkdError("--runtime onnx needs the onnxruntime package.") from None
            return "torchscript"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception:
            if runtime == "onnx":
                raise FkdError(f"{onnx_path} is not a readable ONNX model.") from None
            return "torchscript"
        tag = session.get_modelmeta().custom_metadata_map.get("fkd_pt_sha256")
        if tag != sha256(self.path):
            if runtime == "onnx":
                raise FkdError(f"{onnx_path} was not exported from {self.path}; re-export the weights.")
            return "torchscript"
        self._session = session
        return "onnx"

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(N, 96, 96) uint8 or float crops -> (N, 15, 2) float32 crop-pixel keypoints."""
        x = np.ascontiguousarray(crops, dtype=np.float32).reshape(-1, 1, CROP_SIZE, CROP_SIZE)
        if len(x) == 0:
            return np.zeros((0, len(KEYPOINTS), 2), np.float32)
        if self.runtime == "onnx":
            return self._session.run(None, {"crops": x})[0]
        with torch.inference_mode():
            return self._module(torch.from_numpy(x)).numpy()
