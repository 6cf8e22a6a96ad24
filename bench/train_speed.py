"""Seconds per training epoch with fkd-train's own step, and (on CUDA) how busy the GPU is.

    python bench/train_speed.py [--device auto] [--threads 2] [--batches 20] [--negatives 0.25]
                                [--precision auto] [--compile] [--mtfl] [--reference] [--whole EPOCHS]
                                [--data faces-<key>.npz] [--dense-weight 1]

Times the real thing (wall and this process's CPU time): the faces' context crops on the
device, ``Batches.make`` (batched torch augmentation plus negatives) and ``train_step``
(forward, losses, backward, AdamW, EMA), then one validation pass, scaled to one epoch of
the 300-W split. On CUDA it also reports the
GPU's share of busy time, from the CUDA kernels the profiler records over the timed batches.

``--reference`` also times the earlier per-face cv2 augmentation with the same network step
on this machine at this moment, so a busy machine weighs on both alike. ``--whole N`` runs
``fkd-train`` for N epochs as a subprocess and prints its wall time as a whole process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fkd.model.net import KeypointNet
from fkd.train.config import TrainConfig
from fkd.train.data.augment import AUGMENT_PRESETS, AugmentConfig
from fkd.train.data.batch_augment import DeviceFaces, stand_in_negatives
from fkd.train.data.batches import Batches, batches_per_epoch
from fkd.train.data.load import AugmentedFaces, load_sources
from fkd.train.data.splits import Splits, evaluate_split, split_faces
from fkd.train.dense import DenseHead
from fkd.train.device import autocast_dtype, compile_view, pick_device
from fkd.train.ema import EMA
from fkd.train.loop import train_step
from fkd.train.network import TrainView
from fkd.train.schedule import lr_factor

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def busy_share(fn, device: torch.device, n: int) -> float:
    """The share of wall time in which a CUDA kernel ran, over ``n`` calls of ``fn``."""
    from torch.profiler import ProfilerActivity, profile

    sync(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync(device)
        wall = time.perf_counter() - t0
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type.name == "CUDA" and e.time_range.end > e.time_range.start)
    busy, end = 0.0, -1.0
    for a, b in spans:  # union of kernel intervals (microseconds)
        if b > end:
            busy += b - max(a, end)
            end = b
    return min(1.0, busy / 1e6 / wall)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=20, help="batches timed (after 3 warm-up ones)")
    ap.add_argument("--negatives", type=float, default=0.25)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--mtfl", action="store_true", help="add the MTFL faces (a quarter of each batch)")
    ap.add_argument("--dense-weight", type=float, default=0.0, help="with fkd-train's training-only 68-point head")
    ap.add_argument("--augment", default="default", choices=sorted(AUGMENT_PRESETS))
    ap.add_argument("--reference", action="store_true", help="also time the per-face cv2 augmentation path")
    ap.add_argument("--whole", type=int, default=0, metavar="EPOCHS", help="also time fkd-train as a process")
    ap.add_argument("--data", type=Path, action="append", help="training data as fkd-train takes it (default: "
                    "../shared/data/300w); on a machine without ../shared or without Haar cascades (OpenCV 5), "
                    "the faces-<key>.npz that fkd-train's cache wrote here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    data = [str(p) for p in args.data] if args.data else [str(SHARED / "300w")]
    data += [str(SHARED / "mtfl")] if args.mtfl else []
    cfg = TrainConfig(data=data, negatives=args.negatives, precision=args.precision, compile=args.compile,
                      augment=AUGMENT_PRESETS[args.augment], dense_weight=args.dense_weight)
    faces = load_sources([Path(p) for p in data], ROOT / ".cache")
    sp = split_faces(faces, cfg)
    primary = Splits.primary(sp.train)
    dense = cfg.dense_weight > 0
    prim = DeviceFaces.from_faceset(sp.train.subset(np.flatnonzero(primary)), device, dense)
    aux = DeviceFaces.from_faceset(sp.train.subset(np.flatnonzero(~primary)), device, dense) \
        if (~primary).any() else None
    steps, n_prim, n_aux = batches_per_epoch(len(prim), len(aux) if aux else 0, cfg)
    n_neg = int(round(cfg.negatives * (n_prim + n_aux)))
    aug = AugmentConfig(**cfg.augment)
    model = KeypointNet(width=cfg.width).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    plain = TrainView(model, DenseHead(model).to(device) if dense else None)
    opt = torch.optim.AdamW(plain.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, 1000, cfg.warmup))
    ema = EMA(model, cfg.ema)
    view = compile_view(plain, device) if cfg.compile else plain
    amp = autocast_dtype(cfg.precision, device)
    gen = torch.Generator(device=device).manual_seed(0)
    batches = Batches(prim, aux, n_prim, n_aux, n_neg, aug, lambda n, g: stand_in_negatives(prim, n, aug, g))

    def one() -> None:
        index = torch.randint(0, len(prim), (n_prim,), generator=gen, device=device)
        train_step(view, model, opt, sched, ema, batches.make(index, gen), cfg, amp)

    t_compile = time.perf_counter()
    for _ in range(3):
        one()
    sync(device)
    t_compile = time.perf_counter() - t_compile
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.batches):
        one()
    sync(device)
    per_batch = (time.perf_counter() - t0) / args.batches
    cpu_per_batch = (time.process_time() - c0) / args.batches
    t0 = time.perf_counter()
    evaluate_split(ema.model, sp.val, device)
    sync(device)
    t_val = time.perf_counter() - t0
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{os.cpu_count()} cpus"
    print(f"device {device} ({name}), {args.threads} threads, torch {torch.__version__}, precision "
          f"{str(amp).replace('torch.', '') if amp else 'fp32'}, compile {cfg.compile}")
    print(f"batch: {n_prim} faces + {n_aux} MTFL + {n_neg} negatives; {steps} batches per epoch "
          f"({len(prim)} training faces)")
    print(f"{'part':34s} {'ms / batch':>10s} {'s / epoch':>10s}")
    print(f"{'augment + step (device path)':34s} {1e3 * per_batch:10.1f} {per_batch * steps:10.2f}")
    print(f"{'validation':34s} {'':10s} {t_val:10.2f}")
    print(f"{'epoch':34s} {'':10s} {per_batch * steps + t_val:10.2f}")
    print(f"warm-up (3 batches, includes any compile): {t_compile:.1f} s")
    print(f"CPU time of this process: {cpu_per_batch * steps:.1f} CPU-s per epoch (on a busy machine the fairer "
          f"figure: wall time there depends on what else runs)")
    if device.type == "cuda":
        print(f"GPU busy share over {args.batches} batches: {100 * busy_share(one, device, args.batches):.0f} %")
    if args.reference:
        ref = AugmentedFaces(sp.train.subset(np.flatnonzero(primary)), AugmentConfig(), 0)
        rng = np.random.default_rng(0)
        t_aug = 0.0
        for b in range(args.batches + 1):
            t1 = time.perf_counter()
            items = [ref[int(i)] for i in rng.integers(0, len(ref), n_prim)]
            for t in zip(*items):
                torch.stack(t).to(device)
            sync(device)
            if b:
                t_aug += time.perf_counter() - t1
        t1 = time.perf_counter()
        for _ in range(args.batches):
            index = torch.randint(0, len(prim), (n_prim,), generator=gen, device=device)
            batches.make(index, gen)
        sync(device)
        t_dev = time.perf_counter() - t1
        print(f"augmentation alone, {n_prim} faces: per-face cv2 {1e3 * t_aug / args.batches:.1f} ms / batch, "
              f"batched torch (with negatives) {1e3 * t_dev / args.batches:.1f} ms / batch")
    if args.whole:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ["fkd-train", *[a for d in data for a in ("--data", d)], "--output", tmp, "--epochs", str(args.whole),
                   "--threads", str(args.threads), "--device", device.type, "--negatives", str(args.negatives),
                   "--save-every", str(max(1, args.whole)), *(["--compile"] if args.compile else [])]
            t1 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            print(f"fkd-train, {args.whole} epochs, whole process: {time.perf_counter() - t1:.1f} s")


if __name__ == "__main__":
    main()
