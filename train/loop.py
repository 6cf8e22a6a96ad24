"""fkd-train's loop, in plain PyTorch and readable top to bottom.

One run lives in one folder: ``config.json``, ``val_ids.txt`` (the split), ``last.pt`` (the
checkpoint, rewritten atomically after every epoch), ``best.pt``, ``history.json``, the
pictures, and finally the exported weights ``fkd.pt`` (+ ``fkd.onnx``) and ``metrics.json``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch.utils.data import DataLoader

from fkd.model import torch_weights
from fkd.model.errors import FkdError
from fkd.model.net import KeypointNet, count_parameters
from fkd.train import plots
from fkd.train.augment import AugmentConfig
from fkd.train.data import AugmentedFaces, load_sources
from fkd.train.faceset import FaceSet
from fkd.train.metrics import keypoint_metrics
from fkd.train.quantize import quantise_twin

LOSSES = ("wing", "smoothl1", "mse")


@dataclass
class TrainConfig:
    data: list[str]
    out: str = "runs/fkd"
    epochs: int = 150
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: float = 0.03  # fraction of all steps
    loss: str = "smoothl1"
    width: int = 32
    device: str = "auto"
    seed: int = 0
    val_fraction: float = 0.1
    threads: int | None = None
    cache_dir: str | None = None
    augment: dict = field(default_factory=lambda: asdict(AugmentConfig()))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FkdError("--device cuda: no CUDA GPU is available here; use --device auto or cpu.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FkdError("--device mps: Apple's MPS backend is not available here; use --device auto or cpu.")
    if name not in ("cpu", "cuda", "mps"):
        raise FkdError(f"--device must be auto, cpu, cuda or mps, not {name!r}.")
    return torch.device(name)


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean loss over labelled points only (crop pixels); unlabelled points contribute nothing."""
    m = mask.float()
    if kind == "mse":
        per_point = ((pred - target) ** 2).sum(-1)
    elif kind == "smoothl1":
        per_point = F.smooth_l1_loss(pred, target, reduction="none", beta=1.0).sum(-1)
    elif kind == "wing":  # Feng et al. 2018, on the point distance, w and eps in crop pixels
        w, eps = 4.0, 1.0
        d = (pred - target).norm(dim=-1)
        c = w - w * math.log1p(w / eps)
        per_point = torch.where(d < w, w * torch.log1p(d / eps), d - c)
    else:
        raise FkdError(f"--loss must be one of {', '.join(LOSSES)}, not {kind!r}.")
    return (per_point * m).sum() / m.sum().clamp(min=1.0)


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up, then a cosine down to zero."""
    w = max(1, int(total * warmup))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - w) / max(1, total - w))))


@torch.no_grad()
def predict(model: torch.nn.Module, crops: np.ndarray, device: torch.device, batch: int = 256) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(crops), batch):
        x = torch.from_numpy(crops[i:i + batch].astype(np.float32))[:, None].to(device)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 15, 2), np.float32)


def atomic_save(obj: object, path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename: a kill never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def train(cfg: TrainConfig, resume: bool = False, console: Console | None = None, epochs: int | None = None) -> dict:
    """Fit, checkpoint every epoch, export the best. ``resume`` takes the config stored in the run,
    except ``epochs``, which may extend a finished run."""
    console = console or Console()
    out = Path(cfg.out)
    last = out / "last.pt"
    state = None
    if resume:
        if not last.is_file():
            raise FkdError(f"--resume: there is no checkpoint {last} to resume from.")
        try:
            state = torch.load(last, map_location="cpu", weights_only=False)
            cfg = TrainConfig(**state["config"])
        except Exception:
            raise FkdError(f"--resume: {last} is not a readable fkd checkpoint.") from None
        if epochs is not None:
            cfg.epochs = epochs
        console.print(f"resuming {out} after epoch {state['epoch']} of {cfg.epochs}")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)

    # -- data: the split is a hash of each face's id, written down with the run ---------
    with progress_bar(console) as bar:
        faces = load_sources([Path(p) for p in cfg.data], Path(cfg.cache_dir) if cfg.cache_dir else None, bar)
    if len(faces) < 2:
        raise FkdError("--data: fewer than two labelled faces; nothing to train on.")
    train_idx, val_idx = faces.split(cfg.val_fraction)
    if len(val_idx) == 0:
        val_idx, train_idx = train_idx[:1], train_idx[1:]
    train_set, val_set = faces.subset(train_idx), faces.subset(val_idx)
    (out / "val_ids.txt").write_text("\n".join(val_set.ids) + "\n")
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    console.print(f"{len(faces)} faces ({int(faces.fallback.sum())} crops from landmark fallback, detector "
                  f"missed them, {int(faces.info.get('unreadable', 0))} unreadable images skipped): "
                  f"{len(train_set)} train, {len(val_set)} val; device {device}")

    # -- model, optimiser, schedule ------------------------------------------------------
    model = KeypointNet(width=cfg.width).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    augmented = AugmentedFaces(train_set, AugmentConfig(**cfg.augment), cfg.seed)
    loader = DataLoader(augmented, batch_size=cfg.batch_size, shuffle=True, drop_last=len(train_set) > cfg.batch_size,
                        generator=torch.Generator().manual_seed(cfg.seed))
    total_steps = cfg.epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total_steps, cfg.warmup))
    history: list[dict] = []
    start_epoch, best_nme, elapsed = 1, math.inf, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, best_nme, elapsed = state["history"], state["best_nme"], state["elapsed"]
        start_epoch = state["epoch"] + 1
        torch.set_rng_state(state["torch_rng"])
        augmented.rng = np.random.default_rng([cfg.seed, start_epoch])
    console.print(f"KeypointNet(width={cfg.width}): {count_parameters(model) / 1e6:.2f}M parameters, "
                  f"loss {cfg.loss}, {cfg.epochs} epochs of {len(loader)} batches")

    # -- the loop -----------------------------------------------------------------------
    with progress_bar(console) as bar:
        ep_task = bar.add_task("epochs", total=cfg.epochs, completed=start_epoch - 1, info="")
        b_task = bar.add_task("batches", total=len(loader), info="")
        for epoch in range(start_epoch, cfg.epochs + 1):
            t0 = time.time()
            model.train()
            bar.reset(b_task, total=len(loader))
            losses = []
            for x, y, m in loader:
                x, y, m = x.to(device), y.to(device), m.to(device)
                loss = masked_loss(model(x), y, m, cfg.loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
                bar.update(b_task, advance=1, info=f"loss {np.mean(losses):.3f}")
            pred = predict(model, val_set.crops, device)
            metrics = keypoint_metrics(pred, val_set.points, val_set.mask)
            elapsed += time.time() - t0
            history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_rmse96": metrics["rmse96"],
                            "val_nme": metrics["nme"], "lr": sched.get_last_lr()[0], "seconds": elapsed})
            is_best = metrics["nme"] < best_nme or (math.isnan(best_nme) or best_nme == math.inf)
            if is_best:
                best_nme = metrics["nme"]
                atomic_save({"model": model.state_dict(), "epoch": epoch, "metrics": metrics}, out / "best.pt")
            atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "epoch": epoch, "history": history, "best_nme": best_nme, "elapsed": elapsed,
                         "config": asdict(cfg), "torch_rng": torch.get_rng_state()}, last)
            (out / "history.json").write_text(json.dumps(history, indent=1))
            plots.learning_curve(history, out / "learning_curve.png")
            summary = (f"val RMSE96 {metrics['rmse96']:.3f}  NME {100 * metrics['nme']:.2f} %"
                       f"  (best {100 * best_nme:.2f} %)")
            bar.update(ep_task, advance=1, info=summary)
            bar.console.print(f"epoch {epoch:3d}  loss {history[-1]['train_loss']:.4f}  {summary}  {elapsed:.0f} s")
    return finish(cfg, out, train_set, val_set, elapsed, device, console)


def finish(cfg: TrainConfig, out: Path, train_set: FaceSet, val_set: FaceSet, elapsed: float,
           device: torch.device, console: Console) -> dict:
    """Export the best epoch as TorchScript + an int8 ONNX twin with its metadata; draw its predictions."""
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    model = KeypointNet(width=cfg.width)
    model.load_state_dict(best["model"])
    pred = predict(model, val_set.crops, torch.device("cpu"))
    metrics = keypoint_metrics(pred, val_set.points, val_set.mask)
    extra = {
        "architecture": {"name": "KeypointNet", "width": cfg.width, "parameters": count_parameters(model)},
        "training": {"data": cfg.data, "epochs": cfg.epochs, "best_epoch": best["epoch"], "loss": cfg.loss,
                     "val_fraction": cfg.val_fraction, "val_faces": len(val_set), "seed": cfg.seed,
                     "wall_seconds": round(elapsed, 1), "device": str(device),
                     "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus"},
        "metrics": {"val_rmse96": metrics["rmse96"], "val_nme": metrics["nme"],
                    "per_keypoint": metrics["per_keypoint"]},
    }
    torch_weights.export(model, out / "fkd.pt", extra)
    q = quantise_twin(out / "fkd.pt", train_set.crops, val_set.crops, val_set.points, val_set.mask)
    console.print(f"int8 ONNX twin: val NME {100 * q['nme_int8']:.2f} % against {100 * q['nme_float32']:.2f} % "
                  f"in float32, " + ("kept" if q["written"] else "rejected; the float32 twin stays"))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    show = np.arange(min(24, len(val_set)))
    plots.prediction_grid(val_set.crops[show], pred[show], val_set.points[show], val_set.mask[show],
                          out / "val_predictions.png",
                          title=f"validation: prediction (red x) vs truth (green), NME {100 * metrics['nme']:.2f} %")
    console.print(f"best epoch {best['epoch']}: val RMSE96 {metrics['rmse96']:.3f}, NME {100 * metrics['nme']:.2f} %"
                  f" -> {out / 'fkd.pt'}")
    return metrics
