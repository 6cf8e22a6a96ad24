"""The int8 ONNX twin: what makes fkd-live's model call fast, made and checked after training.

On CPUs with int8 dot-product instructions the quantised network runs about 2-3x faster than
float32 (0.50 against 1.06 ms per face here, bench/RESULTS.md). Every convolution except the
heatmap head is quantised (static QDQ, per-channel weights, calibrated on training crops);
the head and the soft-argmax stay float32, because quantised heatmap logits wreck the
softmax (NME 4.7 % -> 27 % when they were included). The twin replaces the float32 one only
if validation accuracy holds; it keeps the metadata and the tag of the TorchScript file.

The weights are quantised to 7 bits (``reduce_range``), not 8. x86 CPUs without VNNI (AVX2
alone: many AMD and older Intel laptops) multiply uint8 activations by int8 weights with an
instruction that adds two products into a saturating int16; with full 8-bit weights that sum
overflows, so the twin answers differently on such a CPU than on the machine that checked it.
On a 2-core AMD EPYC (AVX2, no VNNI) the 8-bit twin of the shipped weights scored 2.95 %
validation NME against 2.64 % in float32, with points up to 12 px off; the 7-bit twin scored
2.64 %, within 0.4 px of float32 everywhere (bench/RESULTS.md). Its weights lie within ±64
(``WEIGHT_LIMIT``), so no CPU can overflow, and on VNNI CPUs it runs the same instructions as before.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fkd.model.errors import FkdError
from fkd.model.io.files import temporary_beside
from fkd.model.metadata import PT_TAG, sha256
from fkd.model.torch_weights import set_onnx_metadata
from fkd.train.evaluation.metrics import keypoint_metrics

NOTE = "int8 static QDQ, per-channel 7-bit weights (no int16 saturation without VNNI); heatmap head float32"
WEIGHT_LIMIT = 64  # largest |int8 weight| of the twin: 2 x 255 x 64 = 32640 fits an int16, so nothing saturates


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _quantise(src: Path, dst: Path, calibration: np.ndarray) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration)

        def get_next(self) -> dict | None:
            crop = next(self._it, None)
            return None if crop is None else {"crops": crop[None, None].astype(np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        nodes = onnx.load(str(pre)).graph.node
        # the heatmap head's Conv and all after it (soft-argmax, and the small face-score head,
        # which follows it in the graph) stay float32
        convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
        head = next((i for i in convs if nodes[i].name.startswith("/head/")), max(convs))
        quantize_static(str(pre), str(dst), Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True,  # 7-bit weights: see the module docstring
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "Add", "Relu"], nodes_to_exclude=[n.name for n in nodes[head:]])


def largest_int8_weight(model: Any) -> int:
    """The largest magnitude among an ONNX model's int8 tensors (its quantised weights); 0 if none."""
    from onnx import numpy_helper

    arrays = (numpy_helper.to_array(t) for t in model.graph.initializer)
    return max((int(np.abs(a.astype(np.int16)).max()) for a in arrays if a.dtype == np.int8 and a.size), default=0)


def export_float_twin(weights: Path) -> None:
    """Write ``weights``' float32 ONNX twin again from its TorchScript network, replacing any twin.

    For weights whose twin is already int8, to quantise them again with other settings. The
    exported graph keeps the module names (``/head/Conv``) by which ``_quantise`` leaves the
    heatmap head in float32.
    """
    from fkd.model import torch_weights

    weights = Path(weights)
    module, meta = torch_weights.load(weights)
    torch_weights.export_onnx(module, weights.with_suffix(".onnx"), meta, sha256(weights))


def quantise_twin(weights: Path, train_crops: np.ndarray, val_crops: np.ndarray, val_points: np.ndarray,
                  val_mask: np.ndarray, calibration: int = 300, max_nme_rise: float = 0.001,
                  max_shift: float = 0.25) -> dict:
    """Replace ``weights``' float32 ONNX twin by an int8 one if it costs at most ``max_nme_rise``
    (absolute NME) and moves keypoints by at most ``max_shift`` crop px on average.

    Calibrates on ``calibration`` training crops spread evenly over ``train_crops``. Returns the
    validation NME of both, the largest quantised weight (at most ``WEIGHT_LIMIT``, else nothing
    is written) and whether the int8 twin was written.
    """
    import onnx

    weights = Path(weights)
    twin = weights.with_suffix(".onnx")
    source = _session(twin)
    tags = source.get_modelmeta().custom_metadata_map
    if tags.get(PT_TAG) != sha256(weights):
        raise FkdError(f"{twin} is not the ONNX twin of {weights}; re-export the weights.")
    if "quantization" in tags:
        raise FkdError(f"{twin} is already quantised ({tags['quantization']}).")
    tmp = temporary_beside(twin, keep_suffix=True)  # a kill leaves a name later runs clean up
    try:
        pick = np.linspace(0, len(train_crops) - 1, min(calibration, len(train_crops))).astype(int)
        _quantise(twin, tmp, train_crops[pick])
        x = val_crops.astype(np.float32)[:, None]
        ref = source.run(None, {"crops": x})[0]
        got = _session(tmp).run(None, {"crops": x})[0]
        before = keypoint_metrics(ref, val_points, val_mask)["nme"]
        after = keypoint_metrics(got, val_points, val_mask)["nme"]
        shift = float(np.linalg.norm(got - ref, axis=-1).mean())
        model = onnx.load(str(tmp))
        largest = largest_int8_weight(model)
        report = {"nme_float32": before, "nme_int8": after, "mean_shift_px": shift, "largest_weight": largest,
                  "written": False}
        # the accuracy check speaks for this CPU only; the weights' bound speaks for every CPU
        if not (after - before <= max_nme_rise and shift <= max_shift and largest <= WEIGHT_LIMIT):
            return report
        set_onnx_metadata(model, {**tags, "quantization": NOTE})
        onnx.save(model, str(tmp))
        os.replace(tmp, twin)
        report["written"] = True
        return report
    finally:
        tmp.unlink(missing_ok=True)
