"""fkd-train's loop, in plain PyTorch and readable top to bottom.

One run lives in one folder: ``config.json``, ``val_ids.txt`` and ``test_ids.txt`` (the
splits), ``last.pt`` (the resumable checkpoint), ``best.pt``, ``history.json``, the pictures,
and finally the exported weights ``fkd.pt`` (+ ``fkd.onnx``) and ``metrics.json``.

Every training input lives on the device: the faces' context crops are one uint8 tensor and
each batch is augmented there in one go (``train/data/batch_augment.py``), so a GPU is never
waiting on CPU workers. Each batch also carries negatives (crops with no framed face) for
the face-score head: the keypoint loss is masked off on them and a binary cross-entropy on
the face logit sees both.

``train`` reads as ``setup``, then per epoch ``train_one_epoch`` and ``evaluate``, then
``finish``. The pieces live beside it: the settings (``config.py``), the losses
(``losses.py``), the learning-rate schedule and time budget (``schedule.py``), the weights'
average (``ema.py``), the splits and their figures (``splits.py``), the batches and their
negatives (``batches.py``), device and precision (``device.py``), the network's training view
(``network.py``), and the export with the face-score calibration (``export.py``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from fkd.model.errors import FkdError
from fkd.model.io.files import atomic_path, json_text, write_text_atomic
from fkd.model.io.signals import StopFlag, Stopped, stop_on_signals
from fkd.model.net import KeypointNet, count_parameters
from fkd.train.config import TrainConfig, upgraded_config
from fkd.train.data.augment import AugmentConfig
from fkd.train.data.batch_augment import DeviceFaces, label_blocks
from fkd.train.data.batches import Batches, Negatives, bank_negatives, batches_per_epoch, stand_ins
from fkd.train.data.faceset import DENSE_POINTS, FaceSet
from fkd.train.data.load import load_sources
from fkd.train.data.negatives import NegativeBank, build_negative_bank
from fkd.train.data.splits import Splits, evaluate_split, split_faces
from fkd.train.dense import DenseHead, within_reach
from fkd.train.device import autocast_dtype, compile_view, pick_device
from fkd.train.ema import EMA
from fkd.train.export import plots
from fkd.train.export.finish import finish
from fkd.train.losses import heatmap_loss, masked_loss, score_loss
from fkd.train.network import TrainView, freeze_all_but_score, keep_frozen_in_eval, load_matching
from fkd.train.schedule import TrainingClock, lr_schedule, out_of_time
from fkd.train.teachers.distill import load_teachers, teacher_keypoints

# -- one step ---------------------------------------------------------------------------

def train_step(view: torch.nn.Module, model: KeypointNet, opt: torch.optim.Optimizer,
               sched: torch.optim.lr_scheduler.LRScheduler, ema: EMA | None, batch: tuple[torch.Tensor, ...],
               cfg: TrainConfig, amp: torch.dtype | None, teachers: Sequence[torch.nn.Module] = ()) -> torch.Tensor:
    """One optimisation step; returns (total, point, score) losses as a device tensor (no sync)."""
    x, y, m, is_face = batch
    device = x.device
    _, n_taught = label_blocks(y.shape[1])
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        h, kp, logit, dense = view(x)
        taught = teacher_keypoints(teachers, x) if teachers else None
    k, end = kp.shape[1], y.shape[1] - n_taught  # the keypoints, any dense 68, any stored teacher target
    (y, y_dense, y_taught), (m, m_dense, m_taught) = ((t[:, :k], t[:, k:end], t[:, end:]) for t in (y, m))
    if k == DENSE_POINTS:  # a 68-point model learns the points its soft-argmax can reach (fkd.train.dense)
        m = m & within_reach(y, model.centres)
    point_loss = masked_loss(kp, y, m, cfg.loss)
    loss = point_loss
    if taught is not None:  # every point of every face; negatives have no keypoints to teach
        every = is_face.bool()[:, None].expand(-1, k)
        loss = loss + cfg.distill_weight * masked_loss(kp, taught, every, cfg.loss)
    if n_taught:  # the teacher's answer stored with the faces (--dlib-teacher), moved by augmentation
        loss = loss + cfg.distill_weight * masked_loss(kp, y_taught, m_taught, cfg.loss)
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


# -- the run's state --------------------------------------------------------------------

@dataclass
class Record:
    """What the epochs so far leave behind, and what a checkpoint carries over to --resume."""

    history: list[dict] = field(default_factory=list)
    best_nme: float = math.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None  # on the CPU: the weights of the best epoch
    elapsed: float = 0.0  # training seconds, over every resume
    start_epoch: int = 1


@dataclass
class Run:
    """Everything one run holds between epochs: built by ``setup``, advanced by
    ``train_one_epoch`` and ``evaluate``, saved by ``save_checkpoint``."""

    cfg: TrainConfig
    out: Path
    console: Console
    device: torch.device
    amp: torch.dtype | None
    splits: Splits
    val_primary: FaceSet  # the validation split's 15-point faces, for the raw weights' NME beside the EMA's
    model: KeypointNet
    dense_head: DenseHead | None  # trained, never exported
    view: torch.nn.Module  # the TrainView training calls (compiled with --compile)
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    ema: EMA | None
    teachers: list[torch.jit.ScriptModule]
    gen: torch.Generator
    batches: Batches
    steps: int  # batches per epoch
    clock: TrainingClock
    bank: NegativeBank | None  # the negative bank, when batches draw from one: the score is calibrated on it
    started: float  # time.time() before the data was read: metrics.json's process seconds
    record: Record

    @property
    def last(self) -> Path:
        return self.out / "last.pt"

    @property
    def judge(self) -> torch.nn.Module:
        """The weights validated, kept as the best and exported: the moving average when there is one."""
        return self.ema.model if self.ema is not None else self.model


# -- setup ------------------------------------------------------------------------------

def resumed(cfg: TrainConfig, last: Path, epochs: int | None, console: Console) -> tuple[TrainConfig, dict]:
    """--resume: the checkpoint and the config stored in it, except ``epochs``, which may
    extend a finished run. Anything unreadable is one sentence, not a traceback."""
    if not last.is_file():
        raise FkdError(f"--resume: there is no checkpoint {last} to resume from.")
    try:
        state = torch.load(last, map_location="cpu", weights_only=False)
        cfg = TrainConfig(**upgraded_config(state["config"]))
    except Exception:
        raise FkdError(f"--resume: {last} is not a readable fkd checkpoint.") from None
    if epochs is not None:
        cfg.epochs = epochs
    console.print(f"resuming {last.parent} after epoch {state['epoch']} of {cfg.epochs}")
    return cfg, state


def load_splits(cfg: TrainConfig, out: Path, device: torch.device, amp: torch.dtype | None,
                console: Console) -> tuple[Splits, DeviceFaces, DeviceFaces | None]:
    """The faces, split by a hash of each face's id and written down with the run, and the
    training split on the device: 15-point faces apart from MTFL's 5-point ones (None if none),
    since each batch draws its share of both."""
    with progress_bar(console) as bar:
        faces = load_sources([Path(p) for p in cfg.data], Path(cfg.cache_dir) if cfg.cache_dir else None, bar,
                             points=cfg.points)
    if len(faces) < 2:
        raise FkdError("--data: fewer than two labelled faces; nothing to train on.")
    sp = split_faces(faces, cfg)
    write_text_atomic(out / "val_ids.txt", "\n".join(sp.val.ids) + "\n")
    write_text_atomic(out / "test_ids.txt", "\n".join(sp.test.ids) + "\n")
    write_text_atomic(out / "config.json", json.dumps(asdict(cfg), indent=1))
    primary = Splits.primary(sp.train)
    with_dense = cfg.dense_weight > 0
    taught = teach(cfg, sp.train, console) if cfg.dlib_teacher else None

    def on_device(index: np.ndarray) -> DeviceFaces:
        part = None if taught is None else (taught[0][index], taught[1][index])
        return DeviceFaces.from_faceset(sp.train.subset(index), device, with_dense, part)

    prim_dev = on_device(np.flatnonzero(primary))
    aux_dev = on_device(np.flatnonzero(~primary)) if (~primary).any() else None
    if len(prim_dev) == 0:
        raise FkdError("--data: no 15-point faces (300-W or Kaggle) to train on; MTFL alone is not enough.")
    console.print(f"{len(faces)} faces ({int(faces.fallback.sum())} crops from landmark fallback, detector "
                  f"missed them, {int(faces.info.get('unreadable', 0))} unreadable images skipped): "
                  f"{len(sp.train)} train ({int((~primary).sum())} of them 5-point MTFL), {len(sp.val)} val, "
                  f"{len(sp.test)} untouched test; device {device}"
                  + (f", {str(amp).replace('torch.', '')} autocast" if amp else ""))
    return sp, prim_dev, aux_dev


def teach(cfg: TrainConfig, train: FaceSet, console: Console) -> tuple[np.ndarray, np.ndarray]:
    """--dlib-teacher: the teacher's target for the training split's faces only (validation and
    test faces are never asked, so no teacher answer on them reaches training)."""
    from fkd.train.teachers.dlib_teacher import labelled_photos
    from fkd.train.teachers.teaching import taught_targets

    with progress_bar(console) as bar:
        target, known = taught_targets(train, [Path(t) for t in cfg.teachers],
                                       Path(cfg.cache_dir) if cfg.cache_dir else None, cfg.dlib_mtfl,
                                       cfg.dlib_share, bar, labelled_photos([Path(p) for p in cfg.data]),
                                       cfg.dlib_300w)
    mtfl = ~Splits.primary(train)
    mix = f"{cfg.dlib_share:g} dlib + {1 - cfg.dlib_share:g} fkd ({' + '.join(cfg.teachers)})" if cfg.teachers \
        else "dlib alone"
    console.print(f"teacher: {mix}, weight {cfg.distill_weight}, for {int(known[~mtfl].sum())} 15-point faces and "
                  f"{int(known[mtfl].sum())} of {int(mtfl.sum())} MTFL faces")
    return target, known


def build_model(cfg: TrainConfig, device: torch.device, console: Console,
                resuming: bool) -> tuple[KeypointNet, DenseHead | None, torch.nn.Module]:
    """The network (warm-started from --init unless resuming, frozen but for its score head with
    --score-only), the training-only 68-point head, and the view that training calls."""
    model = KeypointNet(width=cfg.width, keypoints=cfg.points).to(device)
    if cfg.init and not resuming:
        got, of = load_matching(model, Path(cfg.init))
        console.print(f"warm start from {cfg.init}: {got} of {of} tensors")
    if cfg.score_only:
        if not cfg.init:
            raise FkdError("--score-only refits the face score of existing weights; give them with --init.")
        freeze_all_but_score(model)
        console.print("--score-only: the keypoint network is frozen; only the face-score head trains, and the "
                      "last epoch is exported (validation NME cannot change)")
    dense_head = DenseHead(model).to(device) if cfg.dense_weight > 0 else None
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model, dense_head, TrainView(model, dense_head)


def make_optimizer(view: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices and kernels only: biases and norms' scales
    (1-d tensors) are not pulled to zero. Frozen tensors (--score-only) are left out."""
    decay = [p for n, p in view.named_parameters() if p.ndim > 1 and p.requires_grad]
    no_decay = [p for n, p in view.named_parameters() if p.ndim <= 1 and p.requires_grad]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def restore(state: dict, out: Path, model: KeypointNet, dense_head: DenseHead | None, opt: torch.optim.Optimizer,
            sched: torch.optim.lr_scheduler.LRScheduler, ema: EMA | None, gen: torch.Generator) -> Record:
    """Put a checkpoint back (``save_checkpoint`` is its other half): weights, optimiser,
    schedule, average, random states, history, and the best epoch's weights from ``best.pt``."""
    model.load_state_dict(state["model"])
    if dense_head is not None and state.get("dense") is not None:
        dense_head.load_state_dict(state["dense"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    if ema is not None and state.get("ema") is not None:
        ema.model.load_state_dict(state["ema"])
        ema.steps = state.get("ema_steps", 0)
    record = Record(history=state["history"], best_nme=state["best_nme"], best_epoch=state.get("best_epoch", 0),
                    elapsed=state["elapsed"], start_epoch=state["epoch"] + 1)
    torch.set_rng_state(state["torch_rng"])
    if "gen_state" in state:
        gen.set_state(state["gen_state"])
    if (out / "best.pt").is_file():
        record.best_state = torch.load(out / "best.pt", map_location="cpu", weights_only=False)["model"]
    return record


def negative_source(cfg: TrainConfig, given: Negatives | None, faces: DeviceFaces, aug: AugmentConfig,
                    device: torch.device, console: Console) -> tuple[Negatives, NegativeBank | None]:
    """Where each batch's negatives come from: the caller's, else the negative bank cut from
    --negatives-from (kept for the face-score calibration at the end), else stand-ins."""
    if given is not None:
        return given, None
    if cfg.negatives > 0 and cfg.negatives_from:
        with progress_bar(console) as bar:
            bank = build_negative_bank(Path(cfg.negatives_from), Path(cfg.cache_dir) if cfg.cache_dir else None,
                                       seed=0, progress=bar)
        bank_crops = torch.from_numpy(bank.crops[bank.train_index]).to(device)[:, None]
        console.print(f"negative bank: {len(bank.train_index)} training crops of {len(bank)} "
                      f"({', '.join(f'{k} {v}' for k, v in bank.counts(bank.train_index).items())})")
        return bank_negatives(bank_crops, aug, device), bank
    return stand_ins(faces, aug), None


def setup(cfg: TrainConfig, resume: bool, console: Console, epochs: int | None,
          negatives: Negatives | None) -> Run:
    """Everything the first epoch needs, in an order that keeps a run reproducible: the seed
    before the network is made, a resumed checkpoint's random states after everything that
    draws from them at setup."""
    out = Path(cfg.out)
    state = None
    if resume:
        cfg, state = resumed(cfg, out / "last.pt", epochs, console)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    amp = autocast_dtype(cfg.precision, device)
    aug = AugmentConfig(**cfg.augment)
    started = time.time()
    sp, prim_dev, aux_dev = load_splits(cfg, out, device, amp, console)
    model, dense_head, view = build_model(cfg, device, console, resuming=state is not None)
    opt = make_optimizer(view, cfg)
    steps, n_prim, n_aux = batches_per_epoch(len(prim_dev), len(aux_dev) if aux_dev else 0, cfg)
    n_neg = int(round(cfg.negatives * (n_prim + n_aux)))
    clock = TrainingClock(start=time.time())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_schedule(cfg.epochs * steps, cfg, clock))
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    # with --dlib-teacher the --teacher weights answered once per face in the stored target
    teachers = load_teachers([Path(t) for t in cfg.teachers], device) if not cfg.dlib_teacher else []
    if teachers:
        console.print(f"distilling from {' + '.join(cfg.teachers)} (flip-averaged"
                      f"{', their mean' if len(teachers) > 1 else ''}), weight {cfg.distill_weight}")
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    record = restore(state, out, model, dense_head, opt, sched, ema, gen) if state is not None else Record()
    if cfg.compile:
        view = compile_view(view, device)
    negatives, bank = negative_source(cfg, negatives, prim_dev, aug, device, console)
    batches = Batches(prim_dev, aux_dev, n_prim, n_aux, n_neg, aug, negatives)
    val_primary = sp.val.subset(np.flatnonzero(Splits.primary(sp.val)))
    console.print(f"KeypointNet(width={cfg.width}, keypoints={cfg.points}): "
                  f"{count_parameters(model) / 1e6:.2f}M parameters, "
                  f"loss {cfg.loss}, {cfg.epochs} epochs of {steps} batches "
                  f"({n_prim} faces + {n_aux} MTFL + {n_neg} negatives), EMA {cfg.ema or 'off'}"
                  + (f", 68-point head weight {cfg.dense_weight}" if dense_head is not None else ""))
    return Run(cfg=cfg, out=out, console=console, device=device, amp=amp, splits=sp, val_primary=val_primary,
               model=model, dense_head=dense_head, view=view, opt=opt, sched=sched, ema=ema, teachers=teachers,
               gen=gen, batches=batches, steps=steps, clock=clock, bank=bank,
               started=started, record=record)


# -- one epoch --------------------------------------------------------------------------

def train_one_epoch(run: Run, epoch: int, bar: Progress, task: TaskID, stop: StopFlag) -> list[float]:
    """One pass over the primary faces in a fresh order; returns the mean (total, point, score)
    losses. The sums stay on the device and the bar reads them every 8 batches, since reading
    one syncs a GPU. A signal ends the epoch between batches, leaving only whole files."""
    run.model.train()
    if run.cfg.score_only:
        keep_frozen_in_eval(run.model)
    bar.reset(task, total=run.steps)
    n = run.batches.n_primary
    order = torch.randperm(len(run.batches.primary), generator=run.gen, device=run.device)
    sums = torch.zeros(3, device=run.device)
    for b in range(run.steps):
        if stop:  # a signal: the batch in hand is done; every file written so far is whole
            raise Stopped(stop, f"during epoch {epoch}; " + (
                f"{run.last} holds the last saved epoch, continue with --resume" if run.last.is_file()
                else "no epoch was saved yet"))
        batch = run.batches.make(order[b * n:(b + 1) * n], run.gen)
        sums += train_step(run.view, run.model, run.opt, run.sched, run.ema, batch, run.cfg, run.amp, run.teachers)
        if b % 8 == 7 or b == run.steps - 1:  # reading the loss syncs a GPU; not every step
            bar.update(task, completed=b + 1, info=f"loss {sums[0].item() / (b + 1):.3f}")
    return (sums / run.steps).tolist()


def evaluate(run: Run) -> tuple[dict, float]:
    """The validation figures of the weights that would be exported (the average's, with EMA),
    and the raw weights' NME beside them (NaN without EMA), so the history shows what EMA buys."""
    metrics = evaluate_split(run.judge, run.splits.val, run.device)
    raw_nme = evaluate_split(run.model, run.val_primary, run.device).get("nme", math.nan) \
        if run.ema is not None else math.nan
    return metrics, raw_nme


def record_epoch(run: Run, epoch: int, losses: list[float], metrics: dict, raw_nme: float) -> None:
    """Append the epoch to ``history.json`` and keep its weights if they are the best so far
    (with --score-only, the last: the keypoints cannot change, so NME cannot choose)."""
    rec = run.record
    scores = metrics.get("scores", np.ones(1))
    rec.history.append({"epoch": epoch, "train_loss": losses[0], "point_loss": losses[1], "score_loss": losses[2],
                        "val_rmse96": metrics.get("rmse96", math.nan), "val_nme": metrics.get("nme", math.nan),
                        "val_face_score_below_half": float((scores < 0.5).mean()),
                        "val_mtfl_nme": metrics.get("mtfl", {}).get("nme", math.nan),
                        "val_nme_without_ema": raw_nme,
                        "lr": run.sched.get_last_lr()[0], "seconds": rec.elapsed})
    nme = metrics.get("nme", math.nan)
    if nme < rec.best_nme or rec.best_state is None or run.cfg.score_only:
        rec.best_nme, rec.best_epoch = nme, epoch
        rec.best_state = {k: v.detach().to("cpu", copy=True) for k, v in run.judge.state_dict().items()}
    write_text_atomic(run.out / "history.json", json_text(rec.history))  # NaN -> null


def save_checkpoint(run: Run, epoch: int) -> None:
    """``best.pt`` (the best epoch's weights, which the export reads) and ``last.pt`` (all that
    --resume needs, ``restore``'s other half), each written whole; then the learning curve."""
    rec = run.record
    if rec.best_state is not None:
        atomic_save({"model": rec.best_state, "epoch": rec.best_epoch, "val_nme": rec.best_nme}, run.out / "best.pt")
    atomic_save({"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
                 "scheduler": run.sched.state_dict(),
                 "ema": run.ema.model.state_dict() if run.ema else None, "ema_steps": run.ema.steps if run.ema else 0,
                 "epoch": epoch, "history": rec.history, "best_nme": rec.best_nme, "best_epoch": rec.best_epoch,
                 "dense": run.dense_head.state_dict() if run.dense_head is not None else None,
                 "elapsed": rec.elapsed, "config": asdict(run.cfg), "torch_rng": torch.get_rng_state(),
                 "gen_state": run.gen.get_state()}, run.last)
    plots.learning_curve(rec.history, run.out / "learning_curve.png")


def epoch_summary(run: Run) -> str:
    """The last epoch's validation figures in one line, for the bar and the log."""
    last, rec = run.record.history[-1], run.record
    summary = (f"val RMSE96 {last['val_rmse96']:.3f}  NME {100 * last['val_nme']:.2f} %"
               f"  (best {100 * rec.best_nme:.2f} %)")
    if run.batches.n_negatives:
        summary += f"  faces<0.5 {100 * last['val_face_score_below_half']:.1f} %"
    if run.batches.aux is not None:
        summary += f"  MTFL NME {100 * last['val_mtfl_nme']:.2f} %"
    return summary


# -- the run ----------------------------------------------------------------------------

def train(cfg: TrainConfig, resume: bool = False, console: Console | None = None, epochs: int | None = None,
          negatives: Negatives | None = None) -> dict:
    """Fit, checkpoint every ``save_every`` epochs and at the end, export the best.

    ``resume`` takes the config stored in the run, except ``epochs``, which may extend a
    finished run. ``negatives(n, generator)`` gives n negative crops on the device; without
    it, stand-ins are made from the training contexts (``batch_augment.stand_in_negatives``).
    """
    run = setup(cfg, resume, console or Console(), epochs, negatives)
    cfg, rec = run.cfg, run.record
    with progress_bar(run.console) as bar, stop_on_signals() as stop:
        ep_task = bar.add_task("epochs", total=cfg.epochs, completed=rec.start_epoch - 1, info="")
        b_task = bar.add_task("batches", total=run.steps, info="")
        epoch = rec.start_epoch - 1
        while epoch < cfg.epochs and not out_of_time(rec.history, cfg):
            epoch += 1
            t0 = time.time()
            run.clock.start, run.clock.before = t0, rec.elapsed
            losses = train_one_epoch(run, epoch, bar, b_task, stop)
            metrics, raw_nme = evaluate(run)
            rec.elapsed += time.time() - t0
            record_epoch(run, epoch, losses, metrics, raw_nme)
            finishing = epoch == cfg.epochs or out_of_time(rec.history, cfg)
            if finishing and epoch < cfg.epochs:
                run.console.print(f"--time-budget: {rec.elapsed:.0f} of {cfg.time_budget:.0f} s spent after epoch "
                                  f"{epoch}; that is the last one")
            if epoch % max(1, cfg.save_every) == 0 or finishing:
                save_checkpoint(run, epoch)
            summary = epoch_summary(run)
            bar.update(ep_task, advance=1, info=summary)
            bar.console.print(f"epoch {epoch:3d}  loss {losses[0]:.4f}  {summary}  {rec.elapsed:.0f} s "
                              f"({time.time() - t0:.1f} s/epoch)")
    return finish(cfg, run.out, run.splits, rec.elapsed, run.device, run.console, run.batches.negatives,
                  time.time() - run.started, run.bank)


# -- display and files ------------------------------------------------------------------

class InfoColumn(ProgressColumn):
    """A task's ``info`` field, or nothing for tasks added without one (the data readers')."""

    def render(self, task: Task) -> Text:
        return Text(str(task.fields.get("info", "")))


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    InfoColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)


def atomic_save(obj: object, path: Path) -> None:
    """torch.save to a temp file in the same folder, then rename: a kill never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
