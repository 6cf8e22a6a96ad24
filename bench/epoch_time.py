"""Seconds per training epoch on this machine's CPU, split into data (augmentation) and compute.

    python bench/epoch_time.py [--threads 2] [--batch-size 64] [--faces 1809]

Uses real cached crops of ../shared/data/300w when present (otherwise random images of the
same shape): augmentation cost depends on nothing but the image size.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from fkd.model.net import KeypointNet
from fkd.train.data.augment import AugmentConfig
from fkd.train.data.faceset import CONTEXT_SIZE, FaceSet
from fkd.train.data.load import AugmentedFaces, load_sources
from fkd.train.losses import masked_loss

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "300w"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--faces", type=int, default=1809, help="training faces per epoch (300-W split: 1809)")
    ap.add_argument("--batches", type=int, default=8, help="batches timed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if SHARED.is_dir():
        faces = load_sources([SHARED], Path(".cache"))
    else:
        n = args.batch_size
        faces = FaceSet.from_crops([str(i) for i in range(n)], np.zeros((n, 96, 96), np.uint8),
                                   np.full((n, 15, 2), 48.0), np.ones((n, 15), bool))
        faces.context = np.random.default_rng(0).integers(0, 255, (n, CONTEXT_SIZE, CONTEXT_SIZE), dtype=np.uint8)
    data = AugmentedFaces(faces, AugmentConfig(), 0)
    model = KeypointNet(width=32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    t_data = t_step = 0.0
    for b in range(args.batches + 1):
        t0 = time.perf_counter()
        items = [data[int(i)] for i in rng.integers(0, len(faces), args.batch_size)]
        x, y, m = (torch.stack(t) for t in zip(*items))
        t1 = time.perf_counter()
        loss = masked_loss(model(x)[0], y, m, "smoothl1")  # [1] is the face-score logit
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if b:  # the first batch warms up
            t_data += t1 - t0
            t_step += t2 - t1
    per_epoch = args.faces / args.batch_size / args.batches
    print(f"{args.threads} threads, batch {args.batch_size}, {os.cpu_count()} cpus, torch {torch.__version__}")
    print(f"{'part':28s} {'ms / batch':>10s} {'s / epoch':>10s}")
    for name, t in (("augmentation (cv2 + numpy)", t_data), ("forward + backward + AdamW", t_step),
                    ("total", t_data + t_step)):
        print(f"{name:28s} {1e3 * t / args.batches:10.1f} {t * per_epoch:10.1f}")


if __name__ == "__main__":
    main()
