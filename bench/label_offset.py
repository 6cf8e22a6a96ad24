"""The labels' left-right offset (fkd.train.label_offset): how large it is, and what adding it buys.

    python bench/label_offset.py [--weights weights/fkd.pt] [--write]

Measures each keypoint's mean x residual (label minus the network's own answer) on the 300-W
training split of the fixed hash split, then prints validation and test NME (hash buckets
0-99 and 100-199) without and with that offset added, plain and flip-averaged, and the mean
signed error per keypoint before and after. Only training faces set the offset, so the
validation and test columns judge it honestly. ``--write`` stores it in the weights' metadata
(both files of the pair; the network is untouched), which is how weights trained before
fkd-train measured it themselves get it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fkd.model.artifact import Predictor, add_label_offset
from fkd.model.schema import KEYPOINTS
from fkd.train import label_offset
from fkd.train.data import load_sources
from fkd.train.evaluate import predict_crops
from fkd.train.metrics import keypoint_metrics

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "300w"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    ap.add_argument("--data", type=Path, default=SHARED, help="300-W folders (default ../shared/data/300w)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="store the measured offset in the weights' metadata")
    args = ap.parse_args()
    plain = Predictor(args.weights, threads=args.threads).without_label_offset()
    flipped = plain.with_flip(True)
    faces = load_sources([args.data], Path(".cache"))
    train, val, test = faces.split()
    print(f"weights {plain.path} ({plain.runtime}); offset measured on {len(train)} training faces")
    offset = label_offset.measure(predict_crops(plain, faces.crops[train]), faces.points[train], faces.mask[train])
    print("x offset per keypoint (crop px): " + " ".join(f"{v:+.2f}" for v in offset) + f"; mean {offset.mean():+.3f}")
    print(f"\n{'split':10s} {'plain':>7s} {'+offset':>8s} {'flip':>7s} {'flip+offset':>12s}   (NME %)")
    signed = {}
    for name, index in (("validation", val), ("test", test)):
        crops, points, mask = faces.crops[index], faces.points[index], faces.mask[index]
        cells = []
        for predictor in (plain, flipped):
            pred = predict_crops(predictor, crops)
            for p in (pred, add_label_offset(pred, offset)):
                cells.append(100 * keypoint_metrics(p, points, mask)["nme"])
                signed.setdefault(name, []).append((p - points)[..., 0].mean(0))
        print(f"{name:10s} {cells[0]:7.3f} {cells[1]:8.3f} {cells[2]:7.3f} {cells[3]:12.3f}")
    print(f"\n{'mean x error (pred - label), crop px':36s} {'val':>6s} {'+offset':>8s} {'test':>6s} {'+offset':>8s}")
    for k, name in enumerate(KEYPOINTS):
        v, t = signed["validation"], signed["test"]
        print(f"{name:36s} {v[0][k]:+6.2f} {v[1][k]:+8.2f} {t[0][k]:+6.2f} {t[1][k]:+8.2f}")
    if args.write:
        from fkd.model import torch_weights

        torch_weights.update_metadata(plain.path, label_offset.metadata(
            offset, len(train), f"training split, 300-W, {plain.runtime} runtime (bench/label_offset.py)"))
        print(f"\nwrote the offset into {plain.path} and its twin")


if __name__ == "__main__":
    main()
