"""Inference latency per face, batch 1 and 16, in every runtime fkd can use.

    python bench/latency.py [--weights weights/fkd.pt] [--threads 2]
    python bench/latency.py --against first.onnx    # the twin against another, turn by turn

Prints milliseconds per face (median of repeated timed runs after a warm-up). The live app
uses whichever Predictor picks: onnxruntime when the ONNX twin is present.

This VM's speed drifts from day to day by up to 1.7x (the same twin has timed 0.50 and
0.86 ms), so a figure from another day says little. ``--against`` times the twin and another
ONNX file in alternating rounds and prints their ratio, which the day's speed cancels out of:
against the first shipped twin, on which the issue's 0.31 ms was measured
(``git show 421eadf:weights/fkd.onnx > first.onnx``), it says what the budget means today.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from fkd.model import artifact, torch_weights
from fkd.model.net import KeypointNet


def per_face_ms(fn, x: np.ndarray, repeats: int) -> float:
    for _ in range(10):
        fn(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times) / len(x)


def ort_runner(onnx_path: Path, threads: int):
    """(N, 96, 96) float crops -> the ONNX file's outputs, on onnxruntime's CPU provider."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = onnxruntime.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"crops": x[:, None]})


def alternating_ms(paths: list[Path], threads: int, rounds: int = 10, repeats: int = 200) -> list[float]:
    """Batch-1 ms per face of each ONNX file: the median over ``rounds`` of each round's median,
    the files taking turns so that they share whatever else the machine is doing."""
    runners = [ort_runner(p, threads) for p in paths]
    crop = np.random.default_rng(0).uniform(0, 255, (1, 96, 96)).astype(np.float32)
    medians: list[list[float]] = [[] for _ in paths]
    for _ in range(rounds):
        for run, out in zip(runners, medians):
            out.append(per_face_ms(run, crop, repeats))
    return [statistics.median(m) for m in medians]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--against", type=Path, default=None, metavar="ONNX",
                    help="time the shipped twin and this ONNX file in turn, batch 1, and print their ratio")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    path = args.weights or artifact.default_weights()
    if args.against is not None:
        twin, other = path.with_suffix(".onnx"), args.against
        mine, theirs = alternating_ms([twin, other], args.threads)
        print(f"batch 1, {args.threads} threads, alternating rounds: {twin} {mine:.3f} ms, {other} {theirs:.3f} ms; "
              f"ratio {mine / theirs:.2f}")
        return
    tmp = Path(tempfile.mkdtemp())
    if not path.is_file():  # latency does not depend on the weights' values
        path = tmp / "fkd.pt"
        torch_weights.export(KeypointNet(width=32).eval(), path, {})
    meta = artifact.read_metadata(path)
    eager = KeypointNet(width=meta.get("architecture", {}).get("width", 32), keypoints=len(meta["keypoints"])).eval()
    ts = torch.jit.load(str(path)).eval()
    float_onnx = tmp / "float32.onnx"  # the exporter's float32 graph (latency does not depend on values)
    torch_weights.export_onnx(eager, float_onnx, meta, "")
    twin = path.with_suffix(".onnx")  # what fkd-live runs: the shipped twin is int8 (bench/quantize_onnx.py)
    try:
        net = cv2.dnn.readNetFromONNX(str(float_onnx))
    except cv2.error:  # OpenCV 4.x's importer rejects the scalar Exp of the soft-argmax sharpness
        net = None

    def torch_fn(m):
        def run(x):
            with torch.inference_mode():
                return m(torch.from_numpy(x)[:, None])
        return run

    def dnn(x):
        net.setInput(x[:, None])
        return net.forward()

    runtimes = {
        "eager PyTorch": torch_fn(eager),
        "TorchScript": torch_fn(ts),
        "TorchScript frozen + optimize_for_inference": torch_fn(torch.jit.optimize_for_inference(torch.jit.freeze(ts))),
    }
    if net is not None:
        runtimes["cv2.dnn (ONNX)"] = dnn
    import onnxruntime

    runtimes["onnxruntime float32"] = ort_runner(float_onnx, args.threads)
    if twin.is_file():
        runtimes[f"onnxruntime, shipped twin {twin.name} (fkd-live)"] = ort_runner(twin, args.threads)
    rng = np.random.default_rng(0)
    print(f"weights {path} ({path.stat().st_size / 1e6:.1f} MB), {args.threads} threads, "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, cv2 {cv2.__version__}, "
          f"{os.cpu_count()} cpus")
    print(f"{'runtime':46s} {'batch 1 ms/face':>16s} {'batch 16 ms/face':>17s}")
    if net is None:
        print("cv2.dnn: cannot import the ONNX graph (its importer rejects the scalar Exp node); not timed")
    for name, fn in runtimes.items():
        b1 = per_face_ms(fn, rng.uniform(0, 255, (1, 96, 96)).astype(np.float32), args.repeats)
        b16 = per_face_ms(fn, rng.uniform(0, 255, (16, 96, 96)).astype(np.float32), max(20, args.repeats // 10))
        print(f"{name:46s} {b1:16.2f} {b16:17.2f}")


if __name__ == "__main__":
    main()
