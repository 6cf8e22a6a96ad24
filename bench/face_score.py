"""The face score on held-out crops, and what the score head costs per face.

    python bench/face_score.py          # runs/interim/fkd.pt if present, else the shipped weights
    python bench/face_score.py --weights runs/x/fkd.pt --out runs/x/face_score.png

Figures: the threshold calibrated on the validation faces (id buckets < 100) and, on the test
faces (buckets 100..199) and held-out negatives, the share of detector and tracker crops kept
and of negatives let through, overall and per kind (train/export/score.py says how each is made);
then the same at the threshold stored in the weights' metadata. Writes the histogram/ROC picture.

Cost: int8 ONNX, batch 1, ``--threads`` threads, ms per face (median of interleaved rounds):
the shipped twin weights/fkd.onnx (no head), this model's twin, and this twin pruned to its
keypoints output, so the head's own cost shows apart from any backbone change.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from rich.progress import Progress

from fkd.model.artifact import Predictor
from fkd.model.errors import FkdError
from fkd.model.metadata import default_weights
from fkd.train.data.load import load_sources
from fkd.train.data.negatives import HELD_OUT_CLIP, build_negative_bank
from fkd.train.export.score import evaluate_score, save_score_figure, score_set

ROOT = Path(__file__).resolve().parents[1]
INT8_OPS = {"QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeLinear", "QuantizeLinear"}


def _sessions(paths: dict[str, Path], threads: int) -> dict[str, tuple]:
    """name -> (onnxruntime session, int8?, outputs, multiply-adds); the pruned variant drops the face_logit branch."""
    import onnx
    import onnxruntime as ort
    from onnx.utils import Extractor

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3
    if threads == 1:  # no idle spinning, so process CPU time is the work itself
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    out = {}
    for name, path in paths.items():
        proto = onnx.load(str(path))
        outputs = [o.name for o in proto.graph.output]
        variants = [(name, proto)]
        if "face_logit" in outputs:
            pruned = Extractor(proto).extract_model(["crops"], ["keypoints"])
            variants.append((f"{name}, keypoints output only", pruned))
        for label, model in variants:
            int8 = any(n.op_type in INT8_OPS for n in model.graph.node)
            sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            out[label] = (sess, int8, [o.name for o in model.graph.output], multiply_adds(model))
    return out


def multiply_adds(proto) -> tuple[int, int]:
    """(whole network, score head) multiply-adds per crop, from the graph's Conv and Gemm shapes.

    A load-independent measure of what the head adds, for a machine too busy to time it.
    """
    import onnx

    graph = onnx.shape_inference.infer_shapes(proto).graph
    dims = {i.name: list(i.dims) for i in graph.initializer}
    for n in graph.node:  # int8 twins: weights reach Conv through DequantizeLinear
        if n.op_type == "DequantizeLinear" and n.input[0] in dims:
            dims[n.output[0]] = dims[n.input[0]]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*graph.value_info, *graph.output]}
    total = head = 0
    for n in graph.node:
        if n.op_type == "Conv" and n.input[1] in dims and n.output[0] in shapes:
            h, w = shapes[n.output[0]][2:4]
            macs = int(np.prod(dims[n.input[1]])) * h * w
        elif n.op_type in ("Gemm", "MatMul") and n.input[1] in dims:
            macs = int(np.prod(dims[n.input[1]]))
        else:
            continue
        total += macs
        head += macs if n.name.startswith("/score/") else 0
    return total, head


def time_per_face(sessions: dict[str, tuple], rounds: int, per_round: int = 50,
                  clock=time.perf_counter) -> dict[str, tuple[float, float]]:
    """(best, median) ms per single-crop call over the rounds; the sessions take turns, so machine
    load hits all alike, and the best round is the nearest to an idle machine's figure.

    With ``clock=time.process_time`` and one-thread sessions it is CPU time, which a busy
    machine inflates far less than wall time.
    """
    x = np.random.default_rng(0).uniform(0, 255, (1, 1, 96, 96)).astype(np.float32)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for sess, *_ in sessions.values():
        for _ in range(20):
            sess.run(None, {"crops": x})
    for _ in range(rounds):
        for name, (sess, *_) in sessions.items():
            t = clock()
            for _ in range(per_round):
                sess.run(None, {"crops": x})
            times[name].append((clock() - t) / per_round)
    return {k: (1e3 * min(v), 1e3 * statistics.median(v)) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    interim = ROOT / "runs/interim/fkd.pt"
    ap.add_argument("--weights", type=Path, default=interim if interim.is_file() else default_weights())
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".cache")
    ap.add_argument("--out", type=Path, default=ROOT / "runs/face_score.png", help="the histogram/ROC picture")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=30, help="timing rounds of 50 calls per model")
    args = ap.parse_args()
    if args.out.resolve() in (args.weights.resolve(), args.weights.with_suffix(".onnx").resolve()):
        raise FkdError(f"--out {args.out} would overwrite the weights.")
    predictor = Predictor(args.weights, threads=args.threads)
    print(f"weights {args.weights}: runtime {predictor.runtime}, score head {'yes' if predictor.has_score else 'NO'}, "
          f"metadata threshold {predictor.threshold:.4f}")
    if not predictor.has_score:
        print("  (no score head: every crop scores 1.0, so every negative is let through)")
    with Progress() as bar:
        faces = load_sources([args.shared / "data/300w"], args.cache_dir, bar)
        bank = build_negative_bank(args.shared, args.cache_dir, seed=0, progress=bar)
    print(f"negatives: {len(bank.train_index)} for training, {len(bank.val_index)} validation, "
          f"{len(bank.test_index)} test (held-out clip: {HELD_OUT_CLIP})")
    sset = score_set(faces, bank)
    report = evaluate_score(predictor.run, sset)
    print("\n-- calibrated here on the validation faces and negatives")
    print("\n".join(report.lines()))
    print(f"meets the targets: {'yes' if report.meets_targets else 'NO'}")
    if predictor.has_score:
        print(f"\n-- at the weights' own threshold {predictor.threshold:.4f}")
        print("\n".join(report.at(predictor.threshold).lines()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_score_figure(report, args.out)
    print(f"picture: {args.out}")

    models = {"shipped weights/fkd.onnx": ROOT / "weights/fkd.onnx"}
    twin = args.weights.with_suffix(".onnx")
    if twin.is_file() and twin.resolve() != models["shipped weights/fkd.onnx"].resolve():
        models[f"{twin}"] = twin
    sessions = _sessions({k: v for k, v in models.items() if v.is_file()}, args.threads)
    ms = time_per_face(sessions, args.rounds)
    load = os.getloadavg()[0]
    print(f"\n-- cost: onnxruntime, batch 1, {args.threads} threads, ms per face, best and median of "
          f"{args.rounds} rounds (load average {load:.1f} on {os.cpu_count()} cpus)")
    for name, (_, int8, outputs, (macs, head_macs)) in sessions.items():
        best, median = ms[name]
        print(f"{name:58s} {'int8' if int8 else 'float'}  {'+'.join(outputs):22s} {best:6.3f} {median:6.3f}  "
              f"{macs / 1e6:6.2f} M multiply-adds" + (f", head {head_macs / 1e3:.1f} k" if head_macs else ""))
    names = list(sessions)
    cpu = time_per_face(_sessions({k: v for k, v in models.items() if v.is_file()}, 1), args.rounds,
                        clock=time.process_time)
    print("CPU time, 1 thread (best, median): " + "; ".join(f"{k} {b:.3f} {m:.3f}" for k, (b, m) in cpu.items()))
    if len(names) == 3:
        print(f"CPU time added by the head: best {cpu[names[1]][0] - cpu[names[2]][0]:+.3f} ms, "
              f"median {cpu[names[1]][1] - cpu[names[2]][1]:+.3f} ms")
    if len(names) == 3:
        macs, head_macs = sessions[names[1]][3]
        print(f"head: {head_macs / 1e3:.1f} k of {macs / 1e6:.2f} M multiply-adds ({100 * head_macs / macs:.3f} %), "
              f"~{ms[names[2]][0] * head_macs / macs * 1e3:.2f} us at this machine's best pace, plus its few small ops")
        for i, what in enumerate(("best", "median")):
            print(f"{what}: head's own cost (twin - twin without it) {ms[names[1]][i] - ms[names[2]][i]:+.3f} ms; "
                  f"over the shipped model {ms[names[1]][i] - ms[names[0]][i]:+.3f} ms (budget +0.05 ms)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FkdError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
