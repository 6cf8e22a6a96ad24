"""The torch side of the weights file: export (TorchScript + ONNX twin) and TorchScript loading.

Imported only where torch is used anyway (training, evaluation through TorchScript, an explicit
TorchScript runtime): the inference path reads the ONNX twin through ``fkd.model.artifact``
without torch. The metadata and its checks come from ``fkd.model.metadata``, never from
``artifact``, which imports this module lazily for its TorchScript runtime. A network may
return keypoints alone (the weights shipped before the face score) or a tuple (keypoints,
face_logit); both are exported and loaded alike.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fkd.model.crop import CROP_SIZE
from fkd.model.errors import FkdError
from fkd.model.io.files import atomic_path
from fkd.model.metadata import META_NAME, OUTPUTS, PT_TAG, base_metadata, check_metadata, default_weights, sha256
from fkd.model.points import POINT_SETS, point_set

TUPLE_OUTPUT = "keypoints N,15,2 (x, y) in crop pixels, pixel centres 0-based; face_logit N (sigmoid: face probability)"


def output_names(model: torch.nn.Module) -> list[str]:
    """["keypoints"] for a network returning keypoints, ["keypoints", "face_logit"] for one returning both."""
    with torch.no_grad():
        out = model(torch.zeros(1, 1, CROP_SIZE, CROP_SIZE))
    return list(OUTPUTS) if isinstance(out, tuple) else [OUTPUTS[0]]


def model_points(model: torch.nn.Module) -> int:
    """How many points a network predicts: its heatmap head's channels (15 for a network
    without one, as the oldest test doubles are); the metadata declares that set's points."""
    head = getattr(model, "head", None)
    count = getattr(head, "out_channels", 15)
    return count if count in POINT_SETS else 15


def export(model: torch.nn.Module, path: Path, extra: dict, onnx: bool = True) -> dict:
    """Write ``path`` (TorchScript + metadata) and, if asked, ``path.onnx`` beside it; return the metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    points = point_set(model_points(model))
    meta = {**base_metadata(points), **extra}
    if len(output_names(model)) == len(OUTPUTS):
        meta["output"] = TUPLE_OUTPUT.replace("N,15,2", f"N,{points.count},2")
    scripted = torch.jit.script(model)
    with atomic_path(path) as tmp:
        torch.jit.save(scripted, str(tmp), _extra_files={META_NAME: json.dumps(meta, indent=1)})
    if onnx:
        export_onnx(model, path.with_suffix(".onnx"), meta, sha256(path))
    return meta


def export_onnx(model: torch.nn.Module, path: Path, meta: dict, pt_sha256: str) -> None:
    """The same network for onnxruntime, tagged with the metadata and the hash of the TorchScript file it twins."""
    import onnx  # only needed to write ONNX files

    model = model.to("cpu").eval()
    names = output_names(model)
    x = torch.zeros(1, 1, CROP_SIZE, CROP_SIZE)
    with atomic_path(Path(path)) as tmp:
        with warnings.catch_warnings():  # the TorchScript-based exporter is chosen on purpose: no onnxscript needed
            warnings.simplefilter("ignore", DeprecationWarning)
            # a TorchScript module (re-exporting shipped weights) has no Python signature to read
            warnings.filterwarnings("ignore", "no signature found", UserWarning)
            torch.onnx.export(model, (x,), str(tmp), input_names=["crops"], output_names=names,
                              dynamic_axes={"crops": {0: "n"}, **{name: {0: "n"} for name in names}},
                              opset_version=17, dynamo=False)
        proto = onnx.load(str(tmp))
        tag_twin(proto, meta, pt_sha256)
        onnx.save(proto, str(tmp))


def set_onnx_metadata(proto: Any, props: dict[str, str]) -> None:
    """Make an ONNX model's ``metadata_props`` exactly ``props``: the one writer of the twin's tags."""
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def tag_twin(proto: Any, meta: dict, pt_sha256: str) -> None:
    """Give an ONNX model fkd's metadata and the hash of its TorchScript file, keeping its other tags."""
    props = {p.key: p.value for p in proto.metadata_props}
    set_onnx_metadata(proto, {**props, META_NAME: json.dumps(meta), PT_TAG: pt_sha256})


def update_metadata(path: Path, changes: dict) -> dict:
    """Merge ``changes`` into a weights file's metadata, in the TorchScript file and its ONNX twin.

    The network is untouched: the TorchScript module is saved again as loaded, and the twin (int8
    or not) keeps its graph and gets the new metadata and the new file's hash, so it stays fresh.
    Both are written beside their targets first, so an error leaves the pair as it was; a kill
    between the two renames leaves at worst a stale twin, which fkd reports and runs around.
    """
    import onnx

    path = Path(path)
    meta = {**read_metadata(path), **changes}
    check_metadata(meta, path)
    module = torch.jit.load(str(path), map_location="cpu")
    twin = path.with_suffix(".onnx")
    with atomic_path(path) as tmp_pt:
        torch.jit.save(module, str(tmp_pt), _extra_files={META_NAME: json.dumps(meta, indent=1)})
        if twin.is_file():
            proto = onnx.load(str(twin))
            tag_twin(proto, meta, sha256(tmp_pt))
            with atomic_path(twin, keep_suffix=True) as tmp_onnx:
                onnx.save(proto, str(tmp_onnx))
    return meta


def read_metadata(path: Path) -> dict:
    """The checked metadata inside a TorchScript weights file, or one clear sentence on why it is not usable."""
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


def load(path: Path | None = None) -> tuple[torch.jit.ScriptModule, dict]:
    """The TorchScript module and its checked metadata."""
    path = Path(path) if path is not None else default_weights()
    meta = read_metadata(path)
    module = torch.jit.load(str(path), map_location="cpu")
    return module.eval(), meta


def load_for_inference(path: Path, threads: int | None = None) -> tuple[torch.jit.ScriptModule, bool]:
    """A frozen TorchScript module for the Predictor, and whether it returns a face logit."""
    if threads is not None:
        torch.set_num_threads(threads)
    module = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.inference_mode():
        has_score = isinstance(module(torch.zeros(1, 1, CROP_SIZE, CROP_SIZE)), tuple)
    return torch.jit.optimize_for_inference(torch.jit.freeze(module)), has_score


def run(module: torch.jit.ScriptModule, x: np.ndarray) -> list[np.ndarray]:
    """The module's outputs on a float32 (N, 1, 96, 96) batch, as numpy arrays in OUTPUTS order."""
    with torch.inference_mode():
        out = module(torch.from_numpy(x))
    return [t.numpy() for t in out] if isinstance(out, tuple) else [out.numpy()]
