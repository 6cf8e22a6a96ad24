"""fkd-train's loop, in plain PyTorch and readable top to bottom.

One run lives in one folder: ``config.json``, ``val_ids.txt`` and ``test_ids.txt`` (the
splits), ``last.pt`` (the resumable checkpoint), ``best.pt``, ``history.json``, the pictures,
and finally the exported weights ``fkd.pt`` (+ ``fkd.onnx``) and ``metrics.json``.

Every training input lives on the device: the faces' context crops are one uint8 tensor and
each batch is augmented there in one go (``train/batch_augment.py``), so a GPU is never
waiting on CPU workers. Each batch also carries negatives (crops with no framed face) for
the face-score head: the keypoint loss is masked off on them and a binary cross-entropy on
the face logit sees both.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from fkd.model import torch_weights
from fkd.model.artifact import add_label_offset
from fkd.model.errors import FkdError
from fkd.model.files import json_text, write_text_atomic
from fkd.model.net import KeypointNet, count_parameters
from fkd.model.schema import INDEX, NUM_KEYPOINTS
from fkd.model.signals import Stopped, stop_on_signals
from fkd.train import label_offset, plots
from fkd.train.augment import AugmentConfig
from fkd.train.batch_augment import DeviceFaces, augment_batch, photometric, stand_in_negatives
from fkd.train.choices import LOSSES
from fkd.train.data import load_sources
from fkd.train.dense import DenseHead, within_reach
from fkd.train.distill import load_teachers, teacher_keypoints
from fkd.train.faceset import FaceSet
from fkd.train.metrics import keypoint_metrics
from fkd.train.mtfl import AUX_PREFIX, eye_nme
from fkd.train.negatives import NegativeBank, build_negative_bank
from fkd.train.quantize import quantise_twin
from fkd.train.score import (
    ScoreSet,
    calibrate_threshold,
    evaluate_score,
    module_predict,
    rate_at,
    save_score_figure,
    score_set,
)

PRECISIONS = ("auto", "fp32", "bf16")


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
    test_fraction: float = 0.1
    threads: int | None = None
    cache_dir: str | None = None
    augment: dict = field(default_factory=lambda: asdict(AugmentConfig()))
    ema: float = 0.999  # decay of the weights' moving average (0: off); validation and export use it
    negatives: float = 0.25  # negative crops per face in each batch (0: no face-score training)
    score_weight: float = 1.0  # weight of the face-score BCE beside the keypoint loss
    heatmap_weight: float = 0.0  # weight of a Gaussian-heatmap cross-entropy beside the point loss
    aux_share: float = 0.25  # share of each batch drawn from 5-point faces (MTFL), when there are any
    precision: str = "auto"  # bf16 autocast on CUDA, float32 elsewhere
    compile: bool = False  # torch.compile the training forward
    save_every: int = 10  # epochs between checkpoints and pictures (always at the end)
    init: str | None = None  # warm start: tensors of matching name and shape from a weights/checkpoint file
    negatives_from: str | None = None  # the shared folder the negative bank is cut from (None: stand-ins)
    time_budget: float | None = None  # seconds of training: the cosine follows the clock and the run ends in time
    teachers: list[str] = field(default_factory=list)  # fkd weights; their mean flip-averaged keypoints are a target
    distill_weight: float = 1.0  # weight of the teachers' target beside the labels'
    dense_weight: float = 0.0  # weight of the 68-point loss of a training-only head (300-W's faces; 0: no head)
    score_only: bool = False  # refit the face-score head of --init alone; the keypoint network stays frozen


def upgraded_config(stored: dict) -> dict:
    """A run's stored config in today's field names, so --resume reads runs from before a rename
    (``teacher``, one path or none, became ``teachers``, a list)."""
    stored = dict(stored)
    if "teacher" in stored:
        old = stored.pop("teacher")
        stored.setdefault("teachers", [old] if old else [])
    return stored


def freeze_all_but_score(model: KeypointNet) -> None:
    """For ``--score-only``: no gradient outside the face-score head. Call ``keep_frozen_in_eval``
    after every ``model.train()`` too, or batch-norm statistics would still drift."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("score."))


def keep_frozen_in_eval(model: KeypointNet) -> None:
    """Batch norms outside the score head use (and keep) their stored statistics, so the
    keypoints of a ``--score-only`` run are exactly those of the weights it started from."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d) and not name.startswith("score."):
            module.eval()


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


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where it pays (CUDA), or where asked; None means plain float32."""
    if precision not in PRECISIONS:
        raise FkdError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def compile_view(view: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``torch.compile`` for ``--compile``, kept off channels_last on the CPU.

    Inductor lays convolutions out channels_last on its own, and on the CPU (torch 2.13) the
    backward pass of a channels_last 1x1 stride-2 convolution, the residual blocks' skip,
    corrupts memory: ``fkd-train --compile`` died with a segfault there. That is also why the
    eager path turns channels_last on for CUDA only.
    """
    if device.type == "cpu":  # an option of this compile only, not inductor's process-wide config
        return cast(torch.nn.Module, torch.compile(view, options={"layout_optimization": False}))
    return cast(torch.nn.Module, torch.compile(view))


EYE_PX = 35.0  # eye-centre distance of the mean 300-W training face in the 96-px crop


def eye_scale(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) factors taking each face's errors to those of a face with ``EYE_PX`` between its eye centres.

    NME divides each face's error by its inter-ocular distance, so a turned head (eyes close
    together) counts more than a frontal one with the same pixel error; plain pixel losses weigh
    them alike. Eye centres, not NME's outer corners, because MTFL and Kaggle's 4-point rows
    label only the centres. Faces without both, and targets that are not the 15 keypoints (the
    68-point head), keep a factor of 1; the factor is capped at 3 so near-profile faces, whose
    eye distance is tiny, cannot dominate a batch.
    """
    ones = torch.ones(len(target), device=target.device)
    if target.shape[1] != NUM_KEYPOINTS:
        return ones
    left, right = INDEX["left_eye_center"], INDEX["right_eye_center"]
    distance = (target[:, left] - target[:, right]).norm(dim=-1)
    known = mask[:, left] & mask[:, right] & (distance > 1.0)
    return torch.where(known, (EYE_PX / distance.clamp(min=1.0)).clamp(max=3.0), ones)


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean loss over labelled points only (crop pixels); unlabelled points contribute nothing.

    Negatives for the face score carry an all-false mask, so they add nothing here either.
    """
    m = mask.float()
    pred, target = pred.float(), target.float()
    if kind == "smoothl1-eyes":
        scale = eye_scale(target, mask)[:, None, None]
        per_point = F.smooth_l1_loss(pred * scale, target * scale, reduction="none", beta=1.0).sum(-1)
    elif kind == "mse":
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


def heatmap_loss(heatmaps: torch.Tensor, beta: torch.Tensor, centres: torch.Tensor, target: torch.Tensor,
                 mask: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Cross-entropy of the soft-argmax distribution against a Gaussian (``sigma`` crop px x 4)
    around each labelled point: it shapes the heatmaps, where the point loss only moves their mean."""
    n, k, h, w = heatmaps.shape
    logp = torch.log_softmax(heatmaps.float().reshape(n, k, h * w) * beta, dim=-1)
    s = sigma * (centres[1] - centres[0])
    gx = torch.exp(-0.5 * ((centres[None, None, :] - target[..., 0:1]) / s) ** 2)  # (n, k, w)
    gy = torch.exp(-0.5 * ((centres[None, None, :] - target[..., 1:2]) / s) ** 2)  # (n, k, h)
    g = (gy[..., :, None] * gx[..., None, :]).reshape(n, k, h * w)
    g = g / g.sum(-1, keepdim=True).clamp(min=1e-12)
    m = mask.float()
    return (-(g * logp).sum(-1) * m).sum() / m.sum().clamp(min=1.0)


def score_loss(logit: torch.Tensor, is_face: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logit.float(), is_face.float())


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up, then a cosine down to zero."""
    w = max(1, int(total * warmup))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - w) / max(1, total - w))))


class EMA:
    """An exponential moving average of the weights (buffers copied), warmed up over the first
    steps so that short runs are not dominated by the random start."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.steps = decay, 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        mine: list[torch.Tensor] = list(self.model.parameters())
        theirs: list[torch.Tensor] = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(mine, theirs, 1 - d)
        for b, src in zip(self.model.buffers(), model.buffers()):
            if b.dtype.is_floating_point:
                b.lerp_(src, 1 - d)
            else:
                b.copy_(src)


def model_outputs(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(keypoints, face logit or None): old networks return keypoints only."""
    if isinstance(out, tuple):
        return out[0], out[1]
    return out, None


@torch.no_grad()
def predict(model: torch.nn.Module, crops: np.ndarray | torch.Tensor, device: torch.device,
            batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, 15, 2) and face scores (N,) in 0..1 (1.0 from a network without the head)."""
    model.eval()
    kps, scores = [], []
    for i in range(0, len(crops), batch):
        chunk = crops[i:i + batch]
        x = chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.asarray(chunk, np.float32))
        x = x.float().reshape(-1, 1, *x.shape[-2:]).to(device)
        kp, logit = model_outputs(model(x))
        kps.append(kp.float().cpu().numpy())
        scores.append(torch.sigmoid(logit).float().cpu().numpy() if logit is not None else np.ones(len(x), np.float32))
    if not kps:
        return np.zeros((0, 15, 2), np.float32), np.zeros(0, np.float32)
    return np.concatenate(kps), np.concatenate(scores)


def atomic_save(obj: object, path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename: a kill never leaves half a file."""
    from fkd.model.files import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_matching(model: torch.nn.Module, path: Path) -> tuple[int, int]:
    """Copy every tensor of ``path`` (fkd weights or a run's checkpoint) whose name and shape
    match into ``model``; returns (copied, of how many the model has)."""
    path = Path(path)
    if not path.is_file():
        raise FkdError(f"--init {path}: no such file.")
    try:
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
    except Exception:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
        except Exception:
            raise FkdError(f"--init {path}: neither fkd weights nor a run checkpoint.") from None
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(take, strict=False)
    return len(take), len(own)


class InfoColumn(ProgressColumn):
    """A task's ``info`` field, or nothing for tasks added without one (the data readers')."""

    def render(self, task: Task) -> Text:
        return Text(str(task.fields.get("info", "")))


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    InfoColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)


class TrainView(torch.nn.Module):
    """The network as training needs it: heatmaps, keypoints, face logit and, with a dense head,
    the 68 points (else an empty (N, 0, 2)) in one call (the part ``--compile`` compiles)."""

    def __init__(self, net: KeypointNet, dense: DenseHead | None = None) -> None:
        super().__init__()
        self.net, self.dense = net, dense

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        p, c3 = self.net.decode(x)
        h = self.net.head(p)
        kp = self.net.soft_argmax(h)
        dense = self.dense(self.net, p) if self.dense is not None else kp[:, :0]
        return h, kp, self.net.score(c3), dense


@dataclass
class Splits:
    train: FaceSet
    val: FaceSet
    test: FaceSet

    @staticmethod
    def primary(faces: FaceSet) -> np.ndarray:
        """True for faces with the full 15 points' source (300-W, Kaggle), false for 5-point MTFL."""
        return np.array([not i.startswith(AUX_PREFIX) for i in faces.ids], bool)


def split_faces(faces: FaceSet, cfg: TrainConfig) -> Splits:
    train_idx, val_idx, test_idx = faces.split(cfg.val_fraction, cfg.test_fraction)
    if len(val_idx) == 0:
        val_idx, train_idx = train_idx[:1], train_idx[1:]
    return Splits(faces.subset(train_idx), faces.subset(val_idx), faces.subset(test_idx))


def evaluate_split(model: torch.nn.Module, faces: FaceSet, device: torch.device,
                   x_offset: np.ndarray | None = None) -> dict:
    """Keypoint metrics on the primary (15-point) faces, and eye-normalised NME on MTFL's.

    ``x_offset`` is the exported weights' label offset (``fkd.train.label_offset``), so that the
    final figures are those of what fkd-predict runs; the per-epoch figures go without it.
    """
    primary = Splits.primary(faces)
    out: dict = {}
    shift = np.zeros(15, np.float32) if x_offset is None else x_offset
    if primary.any():
        kp, score = predict(model, faces.crops[primary], device)
        kp = add_label_offset(kp, shift)
        out = keypoint_metrics(kp, faces.points[primary], faces.mask[primary])
        out["scores"] = score
        out["pred"] = kp
    if (~primary).any():
        kp, score = predict(model, faces.crops[~primary], device)
        out["mtfl"] = eye_nme(add_label_offset(kp, shift), faces.points[~primary], faces.mask[~primary])
        out["mtfl_scores"] = score
    return out


def batches_per_epoch(n_primary: int, n_aux: int, cfg: TrainConfig) -> tuple[int, int, int]:
    """(steps, primary faces per batch, auxiliary faces per batch): an epoch is one pass over
    the primary faces, so MTFL makes batches richer without making epochs longer to count."""
    aux = int(round(cfg.batch_size * cfg.aux_share)) if n_aux else 0
    prim = cfg.batch_size - aux
    steps = max(1, n_primary // prim) if n_primary > prim else 1
    return steps, min(prim, n_primary), aux


def lr_by_progress(progress: float, warmup: float) -> float:
    """The same warm-up and cosine as ``lr_factor``, on a progress fraction 0..1."""
    progress = min(1.0, max(0.0, progress))
    if progress < warmup:
        return max(progress / warmup, 1e-3)
    return 0.5 * (1 + math.cos(math.pi * (progress - warmup) / max(1e-9, 1 - warmup)))


def out_of_time(history: list[dict], cfg: TrainConfig) -> bool:
    """With ``--time-budget``: stop when less than half an epoch (median of the last five) is left."""
    if not cfg.time_budget or not history:
        return False
    times = [history[0]["seconds"]] + [b["seconds"] - a["seconds"] for a, b in itertools.pairwise(history)]
    per = sorted(times[-5:])[len(times[-5:]) // 2]
    return cfg.time_budget - history[-1]["seconds"] < 0.5 * per


@dataclass
class Batches:
    """Makes one training batch on the device: primary faces (the given indices), 5-point faces
    drawn at random, then negatives; all augmented there."""

    primary: DeviceFaces
    aux: DeviceFaces | None
    n_primary: int
    n_aux: int
    n_negatives: int
    augment: AugmentConfig
    negatives: Callable[[int, torch.Generator], torch.Tensor]

    def make(self, index: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(crops, points, mask, is_face): negatives carry zero points, an all-false mask and 0."""
        device = index.device
        x, y, m = augment_batch(self.primary, index, self.augment, gen)
        if self.aux is not None and self.n_aux:
            pick = torch.randint(0, len(self.aux), (self.n_aux,), generator=gen, device=device)
            ax, ay, am = augment_batch(self.aux, pick, self.augment, gen)
            x, y, m = torch.cat([x, ax]), torch.cat([y, ay]), torch.cat([m, am])
        is_face = torch.ones(len(x), device=device)
        n = self.n_negatives
        if n:
            x = torch.cat([x, self.negatives(n, gen)])
            y = torch.cat([y, torch.zeros(n, *y.shape[1:], device=device)])
            m = torch.cat([m, torch.zeros(n, m.shape[1], dtype=torch.bool, device=device)])
            is_face = torch.cat([is_face, torch.zeros(n, device=device)])
        return x, y, m, is_face


def train_step(view: torch.nn.Module, model: KeypointNet, opt: torch.optim.Optimizer,
               sched: torch.optim.lr_scheduler.LRScheduler, ema: EMA | None, batch: tuple[torch.Tensor, ...],
               cfg: TrainConfig, amp: torch.dtype | None, teachers: Sequence[torch.nn.Module] = ()) -> torch.Tensor:
    """One optimisation step; returns (total, point, score) losses as a device tensor (no sync)."""
    x, y, m, is_face = batch
    device = x.device
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        h, kp, logit, dense = view(x)
        taught = teacher_keypoints(teachers, x) if teachers else None
    k = kp.shape[1]  # the labels' first k points are the keypoints, any after them the dense 68
    (y, y_dense), (m, m_dense) = (y[:, :k], y[:, k:]), (m[:, :k], m[:, k:])
    point_loss = masked_loss(kp, y, m, cfg.loss)
    loss = point_loss
    if taught is not None:  # every point of every face; negatives have no keypoints to teach
        every = is_face.bool()[:, None].expand(-1, k)
        loss = loss + cfg.distill_weight * masked_loss(kp, taught, every, cfg.loss)
    if dense.shape[1] and y_dense.shape[1]:  # only the points the head can reach (fkd.train.dense)
        m_dense = m_dense & within_reach(y_dense, model.centres)
        loss = loss + cfg.dense_weight * masked_loss(dense, y_dense, m_dense, cfg.loss)
    if cfg.heatmap_weight > 0:
        loss = loss + cfg.heatmap_weight * heatmap_loss(h, model.log_beta.exp(), model.centres, y, m)
    has_negatives = bool(cfg.negatives > 0)
    s_loss = score_loss(logit, is_face) if has_negatives else torch.zeros((), device=device)
    loss = loss + cfg.score_weight * s_loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    if ema is not None:
        ema.update(model)
    return torch.stack([loss.detach(), point_loss.detach(), s_loss.detach()])


def train(cfg: TrainConfig, resume: bool = False, console: Console | None = None, epochs: int | None = None,
          negatives: Callable[[int, torch.Generator], torch.Tensor] | None = None) -> dict:
    """Fit, checkpoint every ``save_every`` epochs and at the end, export the best.

    ``resume`` takes the config stored in the run, except ``epochs``, which may extend a
    finished run. ``negatives(n, generator)`` gives n negative crops on the device; without
    it, stand-ins are made from the training contexts (``batch_augment.stand_in_negatives``).
    """
    console = console or Console()
    out = Path(cfg.out)
    last = out / "last.pt"
    state = None
    if resume:
        if not last.is_file():
            raise FkdError(f"--resume: there is no checkpoint {last} to resume from.")
        try:
            state = torch.load(last, map_location="cpu", weights_only=False)
            cfg = TrainConfig(**upgraded_config(state["config"]))
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
    amp = autocast_dtype(cfg.precision, device)
    aug = AugmentConfig(**cfg.augment)
    t_start = time.time()

    # -- data: the splits are a hash of each face's id, written down with the run ---------
    with progress_bar(console) as bar:
        faces = load_sources([Path(p) for p in cfg.data], Path(cfg.cache_dir) if cfg.cache_dir else None, bar)
    if len(faces) < 2:
        raise FkdError("--data: fewer than two labelled faces; nothing to train on.")
    sp = split_faces(faces, cfg)
    write_text_atomic(out / "val_ids.txt", "\n".join(sp.val.ids) + "\n")
    write_text_atomic(out / "test_ids.txt", "\n".join(sp.test.ids) + "\n")
    write_text_atomic(out / "config.json", json.dumps(asdict(cfg), indent=1))
    primary = Splits.primary(sp.train)
    with_dense = cfg.dense_weight > 0
    prim_dev = DeviceFaces.from_faceset(sp.train.subset(np.flatnonzero(primary)), device, with_dense)
    aux_dev = DeviceFaces.from_faceset(sp.train.subset(np.flatnonzero(~primary)), device, with_dense) \
        if (~primary).any() else None
    if len(prim_dev) == 0:
        raise FkdError("--data: no 15-point faces (300-W or Kaggle) to train on; MTFL alone is not enough.")
    console.print(f"{len(faces)} faces ({int(faces.fallback.sum())} crops from landmark fallback, detector "
                  f"missed them, {int(faces.info.get('unreadable', 0))} unreadable images skipped): "
                  f"{len(sp.train)} train ({int((~primary).sum())} of them 5-point MTFL), {len(sp.val)} val, "
                  f"{len(sp.test)} untouched test; device {device}"
                  + (f", {str(amp).replace('torch.', '')} autocast" if amp else ""))

    # -- model, optimiser, schedule ------------------------------------------------------
    model = KeypointNet(width=cfg.width).to(device)
    if cfg.init and state is None:
        got, of = load_matching(model, Path(cfg.init))
        console.print(f"warm start from {cfg.init}: {got} of {of} tensors")
    if cfg.score_only:
        if not cfg.init:
            raise FkdError("--score-only refits the face score of existing weights; give them with --init.")
        freeze_all_but_score(model)
        console.print("--score-only: the keypoint network is frozen; only the face-score head trains, and the "
                      "last epoch is exported (validation NME cannot change)")
    dense_head = DenseHead(model).to(device) if with_dense else None  # trained, never exported
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    view: torch.nn.Module = TrainView(model, dense_head)
    decay = [p for n, p in view.named_parameters() if p.ndim > 1 and p.requires_grad]
    no_decay = [p for n, p in view.named_parameters() if p.ndim <= 1 and p.requires_grad]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    steps, n_prim, n_aux = batches_per_epoch(len(prim_dev), len(aux_dev) if aux_dev else 0, cfg)
    n_neg = int(round(cfg.negatives * (n_prim + n_aux)))
    total_steps = cfg.epochs * steps
    clock = {"start": time.time(), "before": 0.0}  # training seconds, for --time-budget's schedule

    def schedule(step: int) -> float:
        """By steps; with --time-budget, by whichever of steps and the clock is further along, so
        the cosine reaches zero when the budget (or the last epoch) does, however busy the machine."""
        if not cfg.time_budget:
            return lr_factor(step, total_steps, cfg.warmup)
        spent = clock["before"] + time.time() - clock["start"]
        return lr_by_progress(max(step / total_steps, spent / cfg.time_budget), cfg.warmup)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    teachers = load_teachers([Path(t) for t in cfg.teachers], device)
    if teachers:
        console.print(f"distilling from {' + '.join(cfg.teachers)} (flip-averaged"
                      f"{', their mean' if len(teachers) > 1 else ''}), weight {cfg.distill_weight}")
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    history: list[dict] = []
    start_epoch, best_nme, best_epoch, elapsed = 1, math.inf, 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        if dense_head is not None and state.get("dense") is not None:
            dense_head.load_state_dict(state["dense"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.model.load_state_dict(state["ema"])
            ema.steps = state.get("ema_steps", 0)
        history, best_nme, elapsed = state["history"], state["best_nme"], state["elapsed"]
        best_epoch = state.get("best_epoch", 0)
        start_epoch = state["epoch"] + 1
        torch.set_rng_state(state["torch_rng"])
        if "gen_state" in state:
            gen.set_state(state["gen_state"])
    best_state = torch.load(out / "best.pt", map_location="cpu", weights_only=False)["model"] \
        if state is not None and (out / "best.pt").is_file() else None
    if cfg.compile:
        view = compile_view(view, device)
    bank = None
    if negatives is None and cfg.negatives > 0 and cfg.negatives_from:
        with progress_bar(console) as bar:
            bank = build_negative_bank(Path(cfg.negatives_from), Path(cfg.cache_dir) if cfg.cache_dir else None,
                                       seed=0, progress=bar)
        bank_crops = torch.from_numpy(bank.crops[bank.train_index]).to(device)[:, None]
        console.print(f"negative bank: {len(bank.train_index)} training crops of {len(bank)} "
                      f"({', '.join(f'{k} {v}' for k, v in bank.counts(bank.train_index).items())})")

        def negatives(n: int, g: torch.Generator) -> torch.Tensor:
            pick = torch.randint(0, len(bank_crops), (n,), generator=g, device=device)
            return augment_negatives(bank_crops[pick], aug, g)
    elif negatives is None:
        def negatives(n: int, g: torch.Generator) -> torch.Tensor:
            return stand_in_negatives(prim_dev, n, aug, g)
    batches = Batches(prim_dev, aux_dev, n_prim, n_aux, n_neg, aug, negatives)
    val_primary = sp.val.subset(np.flatnonzero(Splits.primary(sp.val)))
    console.print(f"KeypointNet(width={cfg.width}): {count_parameters(model) / 1e6:.2f}M parameters, "
                  f"loss {cfg.loss}, {cfg.epochs} epochs of {steps} batches "
                  f"({n_prim} faces + {n_aux} MTFL + {n_neg} negatives), EMA {cfg.ema or 'off'}"
                  + (f", 68-point head weight {cfg.dense_weight}" if with_dense else ""))

    # -- the loop -----------------------------------------------------------------------
    def save(epoch: int) -> None:
        if best_state is not None:
            atomic_save({"model": best_state, "epoch": best_epoch, "val_nme": best_nme}, out / "best.pt")
        atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "ema": ema.model.state_dict() if ema else None, "ema_steps": ema.steps if ema else 0,
                     "epoch": epoch, "history": history, "best_nme": best_nme, "best_epoch": best_epoch,
                     "dense": dense_head.state_dict() if dense_head is not None else None,
                     "elapsed": elapsed, "config": asdict(cfg), "torch_rng": torch.get_rng_state(),
                     "gen_state": gen.get_state()}, last)
        plots.learning_curve(history, out / "learning_curve.png")

    with progress_bar(console) as bar, stop_on_signals() as stop:
        ep_task = bar.add_task("epochs", total=cfg.epochs, completed=start_epoch - 1, info="")
        b_task = bar.add_task("batches", total=steps, info="")
        epoch = start_epoch - 1
        while epoch < cfg.epochs and not out_of_time(history, cfg):
            epoch += 1
            t0 = time.time()
            clock["start"], clock["before"] = t0, elapsed
            model.train()
            if cfg.score_only:
                keep_frozen_in_eval(model)
            bar.reset(b_task, total=steps)
            order = torch.randperm(len(prim_dev), generator=gen, device=device)
            sums = torch.zeros(3, device=device)
            for b in range(steps):
                if stop:  # a signal: the batch in hand is done; every file written so far is whole
                    raise Stopped(stop, f"during epoch {epoch}; " + (
                        f"{last} holds the last saved epoch, continue with --resume" if last.is_file()
                        else "no epoch was saved yet"))
                batch = batches.make(order[b * n_prim:(b + 1) * n_prim], gen)
                sums += train_step(view, model, opt, sched, ema, batch, cfg, amp, teachers)
                if b % 8 == 7 or b == steps - 1:  # reading the loss syncs a GPU; not every step
                    bar.update(b_task, completed=b + 1, info=f"loss {sums[0].item() / (b + 1):.3f}")
            judge = ema.model if ema is not None else model
            metrics = evaluate_split(judge, sp.val, device)
            raw_nme = evaluate_split(model, val_primary, device).get("nme", math.nan) if ema is not None else math.nan
            elapsed += time.time() - t0
            mean = (sums / steps).tolist()
            scores = metrics.get("scores", np.ones(1))
            history.append({"epoch": epoch, "train_loss": mean[0], "point_loss": mean[1], "score_loss": mean[2],
                            "val_rmse96": metrics.get("rmse96", math.nan), "val_nme": metrics.get("nme", math.nan),
                            "val_face_score_below_half": float((scores < 0.5).mean()),
                            "val_mtfl_nme": metrics.get("mtfl", {}).get("nme", math.nan),
                            "val_nme_without_ema": raw_nme,
                            "lr": sched.get_last_lr()[0], "seconds": elapsed})
            nme = metrics.get("nme", math.nan)
            if nme < best_nme or best_state is None or cfg.score_only:
                best_nme, best_epoch = nme, epoch
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in judge.state_dict().items()}
            write_text_atomic(out / "history.json", json_text(history))  # NaN -> null
            finishing = epoch == cfg.epochs or out_of_time(history, cfg)
            if finishing and epoch < cfg.epochs:
                console.print(f"--time-budget: {elapsed:.0f} of {cfg.time_budget:.0f} s spent after epoch {epoch}; "
                              "that is the last one")
            if epoch % max(1, cfg.save_every) == 0 or finishing:
                save(epoch)
            summary = (f"val RMSE96 {history[-1]['val_rmse96']:.3f}  NME {100 * nme:.2f} %"
                       f"  (best {100 * best_nme:.2f} %)")
            if n_neg:
                summary += f"  faces<0.5 {100 * history[-1]['val_face_score_below_half']:.1f} %"
            if aux_dev is not None:
                summary += f"  MTFL NME {100 * history[-1]['val_mtfl_nme']:.2f} %"
            bar.update(ep_task, advance=1, info=summary)
            bar.console.print(f"epoch {epoch:3d}  loss {mean[0]:.4f}  {summary}  {elapsed:.0f} s "
                              f"({time.time() - t0:.1f} s/epoch)")
    return finish(cfg, out, sp, elapsed, device, console, negatives, time.time() - t_start, bank)


def finish(cfg: TrainConfig, out: Path, sp: Splits, elapsed: float, device: torch.device, console: Console,
           negatives: Callable[[int, torch.Generator], torch.Tensor], process_seconds: float = 0.0,
           bank: NegativeBank | None = None) -> dict:
    """Export the best epoch as TorchScript + an int8 ONNX twin with its metadata; report the
    untouched test split once; draw predictions and the face-score picture."""
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    model = KeypointNet(width=cfg.width)
    model.load_state_dict(best["model"])
    model.eval()
    cpu = torch.device("cpu")
    primary = Splits.primary(sp.train)
    offset = label_offset.measure(predict(model, sp.train.crops[primary], cpu)[0], sp.train.points[primary],
                                  sp.train.mask[primary])
    val = evaluate_split(model, sp.val, cpu, offset)
    test = evaluate_split(model, sp.test, cpu, offset) if len(sp.test) else {}
    score_meta, score_report, sset = calibrate_score(model, sp, negatives, device, cfg, out, bank)

    def public(m: dict) -> dict:
        return {k: v for k, v in m.items() if k not in ("scores", "pred", "mtfl_scores")}

    history = json.loads((out / "history.json").read_text()) if (out / "history.json").is_file() else []
    secs = sorted(h2["seconds"] - h1["seconds"] for h1, h2 in itertools.pairwise(history))
    extra = {
        "architecture": {"name": "KeypointNet", "width": cfg.width, "parameters": count_parameters(model),
                         "outputs": ["keypoints", "face_logit"]},
        "training": {"data": cfg.data, "epochs": history[-1]["epoch"] if history else cfg.epochs,
                     "epochs_planned": cfg.epochs, "time_budget_seconds": cfg.time_budget,
                     "best_epoch": best["epoch"], "loss": cfg.loss,
                     "val_fraction": cfg.val_fraction, "test_fraction": cfg.test_fraction,
                     "val_faces": len(sp.val), "test_faces": len(sp.test), "seed": cfg.seed, "ema": cfg.ema,
                     "negatives": cfg.negatives, "heatmap_weight": cfg.heatmap_weight, "aux_share": cfg.aux_share,
                     "dense_weight": cfg.dense_weight, "score_only": cfg.score_only,
                     "augment": cfg.augment, "init": cfg.init, "precision": cfg.precision, "compile": cfg.compile,
                     "wall_seconds": round(elapsed, 1), "process_seconds": round(process_seconds, 1),
                     "median_epoch_seconds": round(secs[len(secs) // 2], 2) if secs else None,
                     "device": str(device),
                     "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus"},
        "metrics": {"val_rmse96": val.get("rmse96"), "val_nme": val.get("nme"),
                    "per_keypoint": val.get("per_keypoint"),
                    "test_rmse96": test.get("rmse96"), "test_nme": test.get("nme"),
                    "test_per_keypoint": test.get("per_keypoint")},
    }
    extra.update(label_offset.metadata(offset, int(primary.sum()), "training split, 15-point faces, float32"))
    if score_meta is not None:
        extra["face_score"] = score_meta
    torch_weights.export(model, out / "fkd.pt", extra)
    q = quantise_twin(out / "fkd.pt", sp.train.crops, sp.val.crops, sp.val.points, sp.val.mask)
    console.print(f"int8 ONNX twin: val NME {100 * q['nme_int8']:.2f} % against {100 * q['nme_float32']:.2f} % "
                  f"in float32, " + ("kept" if q["written"] else "rejected; the float32 twin stays"))
    if q["written"] and sset is not None and score_meta is not None:
        # the live app runs the int8 twin: calibrate the threshold on what ships, then write it in
        from fkd.model.artifact import Predictor

        shipped = evaluate_score(Predictor(out / "fkd.pt").run, sset)
        if abs(shipped.threshold - score_meta["threshold"]) > 1e-6:
            score_report = {**shipped.summary(), "calibrated_on": "int8 ONNX twin",
                            "float32": score_meta}
            extra["face_score"] = score_meta = {**shipped.summary(), "calibrated_on": "int8 ONNX twin"}
            torch_weights.export(model, out / "fkd.pt", extra)
            q = quantise_twin(out / "fkd.pt", sp.train.crops, sp.val.crops, sp.val.points, sp.val.mask)
            save_score_figure(shipped, out / "face_score.png")
        for line in shipped.lines():
            console.print(f"face score (int8 twin): {line}")
    report = {**public(val), "test": public(test), "face_score": score_report, "int8": q}
    write_text_atomic(out / "metrics.json", json_text(report))  # NaN -> null: never invalid JSON
    if "pred" in val:
        primary = Splits.primary(sp.val)
        crops, pts, mask = sp.val.crops[primary], sp.val.points[primary], sp.val.mask[primary]
        show = np.arange(min(24, len(crops)))
        plots.prediction_grid(crops[show], val["pred"][show], pts[show], mask[show], out / "val_predictions.png",
                              title=f"validation: prediction (red x) vs truth (green), NME {100 * val['nme']:.2f} %")
    if history:
        plots.learning_curve(history, out / "learning_curve.png")
    said = (f"best epoch {best['epoch']}: val RMSE96 {val.get('rmse96', math.nan):.3f}, "
            f"NME {100 * val.get('nme', math.nan):.2f} %")
    if test:
        said += f"; untouched test NME {100 * test.get('nme', math.nan):.2f} % ({len(sp.test)} faces)"
    if "mtfl" in val:
        said += f"; MTFL val eye-NME {100 * val['mtfl']['nme']:.2f} %"
    console.print(said + f" -> {out / 'fkd.pt'}")
    return report


def calibrate_score(model: KeypointNet, sp: Splits, negatives: Callable[[int, torch.Generator], torch.Tensor],
                    device: torch.device, cfg: TrainConfig, out: Path,
                    bank: NegativeBank | None = None) -> tuple[dict | None, dict, ScoreSet | None]:
    """The face-score threshold from held-out faces and negatives, its figures and its picture.

    With the negative bank, ``train/score.py`` calibrates on the validation buckets (detector
    and tracker crops of the 300-W faces, the bank's validation negatives) and measures on the
    untouched test buckets. Without it (stand-in negatives, for quick runs), the threshold
    keeps 99.5 % of the validation faces' crops, judged against fresh stand-ins.
    """
    if cfg.negatives <= 0:
        return None, {}, None
    if bank is not None:
        held = FaceSet.concat([sp.val, sp.test])
        held = held.subset(np.flatnonzero(Splits.primary(held)))
        sset = score_set(held, bank, seed=cfg.seed)
        report = evaluate_score(module_predict(model), sset)
        save_score_figure(report, out / "face_score.png")
        return report.summary(), report.summary(), sset
    cpu = torch.device("cpu")
    gen = torch.Generator(device=device).manual_seed(10_000 + cfg.seed)
    neg = negatives(max(400, len(sp.val)), gen).cpu()
    _, pos = predict(model, sp.val.crops, cpu)
    _, negs = predict(model, neg, cpu)
    threshold = calibrate_threshold(pos) if len(pos) else 0.5
    summary = {"threshold": threshold, "val_tpr": rate_at(pos, threshold), "val_fpr": rate_at(negs, threshold),
               "counts": {"val_faces": len(pos), "val_negatives": len(negs)},
               "held_out": "validation detector crops and stand-in negatives (no negative bank given)"}
    plots_score(pos, negs, threshold, out / "face_score.png")
    return summary, summary, None


def plots_score(pos: np.ndarray, neg: np.ndarray, threshold: float, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 41).tolist()
    ax.hist(neg, bins, alpha=0.6, label=f"negatives ({len(neg)})", color="C3")
    ax.hist(pos, bins, alpha=0.6, label=f"faces ({len(pos)})", color="C2")
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f}")
    ax.set_yscale("log")
    ax.set_xlabel("face score")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# keep one name for photometric changes of bank negatives (H4's crops are raw grey levels)
def augment_negatives(crops: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(len(crops), generator=gen, device=crops.device) < 0.5
    x = torch.where(flip[:, None, None, None], crops.flip(-1), crops).float()
    return photometric(x, cfg, gen)
