"""The labels' left-right offset (fkd.train.teachers.label_offset): how large it is, and what adding it buys.

    python bench/label_offset.py [--weights weights/fkd.pt] [--write] [--by-scale]

Measures each keypoint's mean x residual (label minus the network's own answer) on the 300-W
training split of the fixed hash split, then prints validation and test NME (hash buckets
0-99 and 100-199) without and with that offset added, plain and flip-averaged, and the mean
signed error per keypoint before and after. Only training faces set the offset, so the
validation and test columns judge it honestly. ``--write`` stores it in the weights' metadata
(both files of the pair; the network is untouched), which is how weights trained before
fkd-train measured it themselves get it.

``--by-scale`` asks where the offset comes from. Each face's residual (label minus the
network's answer, mean over its 15 points) is regressed on its crop's scale k, crop pixels
per photo pixel (from its 68 points in both frames). A shift of the labels by d *photo*
pixels gives a residual of d x k in x, where flipped training faces keep the network from
learning it, and d x (k - mean k) in y, where the network learns the average; a habit of
the annotators in face units would give no slope. On the 300-W data here the slopes are
0.6-0.8 photo px in x and 0.95-1.1 in y for two independent runs, and fkd's crop is exact
(a blob at a known sub-pixel place lands where ``to_crop`` says, to 0.001 px), so the shift
is in the labels as shipped with the photos: a coordinate convention or the annotators'
clicks, in photo pixels.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from fkd.model.artifact import Predictor, add_label_offset
from fkd.model.schema import KEYPOINTS
from fkd.train.data.load import load_sources
from fkd.train.data.pts import read_pts
from fkd.train.evaluation.evaluate import predict_crops
from fkd.train.evaluation.metrics import keypoint_metrics
from fkd.train.teachers import label_offset

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "300w"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    ap.add_argument("--data", type=Path, default=SHARED, help="300-W folders (default ../shared/data/300w)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="store the measured offset in the weights' metadata")
    ap.add_argument("--by-scale", action="store_true", help="also regress the residual on the crop's scale")
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
    if args.by_scale:
        by_scale(plain, faces, np.concatenate([train, val]), args.data)
    if args.write:
        from fkd.model import torch_weights

        torch_weights.update_metadata(plain.path, label_offset.metadata(
            offset, len(train), f"training split, 300-W, {plain.runtime} runtime (bench/label_offset.py)"))
        print(f"\nwrote the offset into {plain.path} and its twin")


def by_scale(predictor: Predictor, faces, index: np.ndarray, root: Path) -> None:
    """The residual's dependence on crop pixels per photo pixel (see the module docstring)."""
    residual = (faces.points[index] - predict_crops(predictor, faces.crops[index])).mean(1)
    k = np.empty(len(index))
    for j, i in enumerate(index):
        raw = read_pts(root / f"{faces.ids[i]}.pts")
        dense = faces.dense[i]
        k[j] = np.std(dense - dense.mean(0)) / np.std(raw - raw.mean(0))
    print(f"\nresidual (label - network, mean of 15 points) against k, crop px per photo px, over {len(index)} "
          f"training and validation faces (k median {np.median(k):.3f}, 10-90 % {np.percentile(k, 10):.3f}-"
          f"{np.percentile(k, 90):.3f})")
    thirds = np.quantile(k, [0, 1 / 3, 2 / 3, 1])
    for axis, name in ((0, "x"), (1, "y")):
        (c, a), *_ = np.linalg.lstsq(np.stack([np.ones_like(k), k], 1), residual[:, axis], rcond=None)
        rest = residual[:, axis] - c - a * k
        se = np.sqrt(rest.var() / ((k - k.mean()) ** 2).sum())
        parts = ", ".join(f"k {lo:.2f}-{hi:.2f}: {residual[(k >= lo) & (k <= hi), axis].mean():+.3f}"
                          for lo, hi in itertools.pairwise(thirds))
        print(f"{name}: mean {residual[:, axis].mean():+.3f} crop px = {c:+.3f} + {a:+.3f} (s.e. {se:.3f}) x k; "
              f"by thirds of k: {parts}")


if __name__ == "__main__":
    main()
