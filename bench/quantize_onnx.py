"""Quantise a weights file's ONNX twin to int8, for fkd-live's speed; check it costs no accuracy.

    python bench/quantize_onnx.py weights/fkd.pt --data ../shared/data/300w

Why: the model call is most of fkd-live's time per frame, and on CPUs with VNNI/AMX int8
convolutions run ~2.7x faster than float32 (measured: 1.82 -> 0.67 ms per face here).
Every convolution except the heatmap head is quantised (static, per-channel weights,
calibrated on training-split crops); the head and the soft-argmax stay float32, because
quantised heatmap logits wreck the softmax (NME 4.7 % -> 27 % when they were included).

The result replaces ``<weights>.onnx`` (pass --out to write elsewhere). It keeps the twin's
metadata and its tag with the TorchScript file's hash, so model.artifact.Predictor picks it
up unchanged. It is refused (nothing written) if validation NME rises by more than
--max-nme-rise points or keypoints move by more than --max-shift px on average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from fkd.model.artifact import read_metadata, sha256
from fkd.model.schema import NME_NORM_PAIR
from fkd.train.faceset import FaceSet
from fkd.train.pts import load_pts_folder

TAG = "fkd_pt_sha256"
ROOT = Path(__file__).resolve().parents[1]


class Crops(CalibrationDataReader):
    def __init__(self, crops: np.ndarray) -> None:
        self._it = iter(crops)

    def get_next(self) -> dict | None:
        crop = next(self._it, None)
        return None if crop is None else {"crops": crop[None, None].astype(np.float32)}


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def nme(pred: np.ndarray, truth: np.ndarray) -> float:
    a, b = NME_NORM_PAIR
    norm = np.linalg.norm(truth[:, a] - truth[:, b], axis=1)
    return float((np.linalg.norm(pred - truth, axis=-1).mean(1) / norm).mean())


def quantise(src: Path, dst: Path, calibration: np.ndarray) -> None:
    """Static int8 QDQ model of ``src`` at ``dst``; the last Conv (heatmap head) and after stay float."""
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        nodes = onnx.load(str(pre)).graph.node
        head = max(i for i, n in enumerate(nodes) if n.op_type == "Conv")
        keep_float = [n.name for n in nodes[head:]]
        quantize_static(str(pre), str(dst), Crops(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "Add", "Relu"], nodes_to_exclude=keep_float)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "300w")
    parser.add_argument("--out", type=Path, default=None, help="default: replace <weights>.onnx")
    parser.add_argument("--calibration", type=int, default=300, help="training crops to calibrate on")
    parser.add_argument("--max-nme-rise", type=float, default=0.1, help="percentage points")
    parser.add_argument("--max-shift", type=float, default=0.25, help="mean keypoint shift, crop px")
    args = parser.parse_args()

    read_metadata(args.weights)
    twin = args.weights.with_suffix(".onnx")
    source = session(twin)
    tags = source.get_modelmeta().custom_metadata_map
    if tags.get(TAG) != sha256(args.weights):
        print(f"error: {twin} is not the ONNX twin of {args.weights}; re-export the weights.", file=sys.stderr)
        return 1
    if "quantization" in tags:
        print(f"error: {twin} is already quantised ({tags['quantization']}).", file=sys.stderr)
        return 1
    faces = FaceSet.concat([load_pts_folder(f, cache_dir=ROOT / ".cache")
                            for f in sorted(p for p in args.data.iterdir() if p.is_dir())])
    train, val = faces.split()
    pick = train[np.linspace(0, len(train) - 1, args.calibration).astype(int)]
    out = args.out or twin
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".onnx")
    os.close(fd)
    quantise(twin, Path(tmp), faces.crops[pick])

    x = faces.crops[val].astype(np.float32)[:, None]
    ref = source.run(None, {"crops": x})[0]
    got = session(Path(tmp)).run(None, {"crops": x})[0]
    truth = faces.points[val]
    before, after = 100 * nme(ref, truth), 100 * nme(got, truth)
    shift = float(np.linalg.norm(got - ref, axis=-1).mean())
    print(f"validation ({len(val)} faces): NME float32 {before:.3f} %, int8 {after:.3f} %; "
          f"mean keypoint shift {shift:.3f} crop px")
    if after - before > args.max_nme_rise or shift > args.max_shift:
        os.unlink(tmp)
        print("error: int8 costs too much accuracy; nothing written.", file=sys.stderr)
        return 1
    model = onnx.load(tmp)
    del model.metadata_props[:]
    for key, value in {**tags, "quantization": "int8 static QDQ, per-channel; heatmap head float32"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
