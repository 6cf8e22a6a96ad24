"""Flip averaging at inference (issue 10's last lever): is the mirrored second look worth its cost?

    python bench/flip_average.py [--weights weights/fkd.pt] [--runtime onnx] [--latency] [--crops]

Each 300-W face of the fixed validation split (and the test split, hash buckets 100-199) is
run as it is and mirrored; the mirrored answer is mapped back (x -> 95 - x, left and right
names swapped) and averaged with the plain one: ``Predictor(flip=True)``, what fkd-predict,
fkd-eval and fkd-submit do by default and ``fkd-live --flip`` does on request. Prints NME overall
and per keypoint, both ways. With ``--latency`` it also times the int8 twin on one crop
against the crop and its mirror in one batch of two: the price per face the live app would
pay. Time it on an idle machine; the accuracy figures do not care.

``--crops`` asks whether more looks than two would pay: each face is cut again from its
context crop at a few scales or shifts about the crop centre (the batched training resampler,
bilinear, so its one-crop baseline is printed too), each cut flip-averaged, and the answers
mapped back and averaged. The last set is a cascade's second look: the crop re-cut so that
the first answer lands on the mean training shape (rotation, scale and shift by least
squares), which shows whether an upright, normalised face is easier for the network.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fkd.model.artifact import Predictor
from fkd.model.crop import similarity_to_mean
from fkd.model.schema import KEYPOINTS
from fkd.train.data.load import load_sources
from fkd.train.evaluation.evaluate import predict_crops
from fkd.train.evaluation.metrics import keypoint_metrics

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "300w"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    ap.add_argument("--runtime", default="auto", choices=("auto", "onnx", "torchscript"))
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--latency", action="store_true", help="also time batch 1 against the flip pair")
    ap.add_argument("--crops", action="store_true", help="also average over crops re-cut at other scales and shifts")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=500)
    args = ap.parse_args()
    predictor = Predictor(args.weights, runtime=args.runtime, threads=args.threads)
    flipping = Predictor(args.weights, runtime=args.runtime, threads=args.threads, flip=True)
    faces = load_sources([args.data], Path(".cache"))
    train, val, test = faces.split()
    print(f"weights {predictor.path} ({predictor.runtime}); {len(val)} validation and {len(test)} test faces")
    rows = {}
    for name, index in (("validation", val), ("test", test)):
        crops, points, mask = faces.crops[index], faces.points[index], faces.mask[index]
        plain = keypoint_metrics(predict_crops(predictor, crops), points, mask)
        both = keypoint_metrics(predict_crops(flipping, crops), points, mask)
        rows[name] = (plain, both)
        print(f"{name:10s} NME plain {100 * plain['nme']:.3f} %   flip-averaged {100 * both['nme']:.3f} %")
    print(f"\n{'keypoint':26s} {'val plain':>9s} {'val flip':>9s} {'test plain':>10s} {'test flip':>9s}")
    for k in KEYPOINTS:
        cells = [100 * rows[s][i]["per_keypoint"][k]["nme"] for s in ("validation", "test") for i in (0, 1)]
        print(f"{k:26s} {cells[0]:9.2f} {cells[1]:9.2f} {cells[2]:10.2f} {cells[3]:9.2f}")
    if args.crops:
        whole = faces.mask[train].all(axis=1)  # faces with all 15 points labelled
        template = faces.points[train][whole].mean(axis=0)
        for name, index in (("validation", val), ("test", test)):
            print(f"\n{name}, flip-averaged, over re-cut crops:")
            multi_crop(flipping, faces, index, template)
    if args.latency:
        one = faces.crops[val[:1]]
        from latency import per_face_ms  # bench/latency.py's timer (this folder is on sys.path)

        single = per_face_ms(predictor.run, one, args.repeats)
        double = per_face_ms(flipping.run, one, args.repeats)
        print(f"\nlatency per face, {args.threads} threads: plain {single:.3f} ms, "
              f"flip-averaged (batch of 2) {double:.3f} ms")


def multi_crop(predictor: Predictor, faces, index, template) -> None:
    """NME of flip-averaged answers averaged over re-cut crops (see the module docstring)."""
    import numpy as np
    import torch

    from fkd.train.data.batch_augment import DeviceFaces, apply, resample, similarity

    sub = faces.subset(index)
    dev = DeviceFaces.from_faceset(sub, torch.device("cpu"))
    n = len(sub)

    def look(t):
        crops = resample(dev.context, t @ dev.to_crop)[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
        return apply(torch.linalg.inv(t), torch.from_numpy(predict_crops(predictor, crops)).float())

    def report(name, answers) -> None:
        nme = keypoint_metrics(torch.stack(answers).mean(0).numpy(), sub.points, sub.mask)["nme"]
        print(f"  {name:36s} {100 * nme:.3f} %  ({len(answers) * 2} network runs per face)")

    looks = {"one crop (resampled)": [(1.0, 0, 0)],
             "scales 0.95, 1, 1.05": [(0.95, 0, 0), (1.0, 0, 0), (1.05, 0, 0)],
             "shifts 0, +-2 px in x and y": [(1.0, 0, 0), (1.0, 2, 0), (1.0, -2, 0), (1.0, 0, 2), (1.0, 0, -2)]}
    for name, cuts in looks.items():
        report(name, [look(similarity(torch.zeros(n), torch.full((n,), scale),
                                      torch.tensor([[dx, dy]] * n, dtype=torch.float32))) for scale, dx, dy in cuts])
    first = look(torch.eye(3).repeat(n, 1, 1))
    second = look(torch.from_numpy(np.stack([similarity_to_mean(p, template) for p in first.numpy()])).float())
    report("aligned to the mean shape, alone", [second])
    report("one crop and aligned, averaged", [first, second])


if __name__ == "__main__":
    main()
