"""fkd-train's settings: one dataclass, written to each run's ``config.json`` and read back by --resume.

Kept apart from the loop so that the export step and the benchmarks name a run's settings
without importing the loop, and so that old runs' configs are upgraded in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from fkd.train.data.augment import AugmentConfig


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
    dlib_teacher: bool = False  # dlib's 68-point answer, mixed with the --teacher's, is a second target (teaching.py)
    dlib_share: float = 0.5  # dlib's weight in that mix
    dlib_300w: bool = True  # the 15-point faces take the mix beside their labels
    dlib_mtfl: bool = True  # MTFL's faces take the mix too, where dlib agrees with their 5 hand marks
    score_only: bool = False  # refit the face-score head of --init alone; the keypoint network stays frozen
    points: int = 15  # 15: Kaggle's keypoints on their crop; 68: iBUG's points on the whole face (fkd.model.points)


def upgraded_config(stored: dict) -> dict:
    """A run's stored config in today's field names, so --resume reads runs from before a rename
    (``teacher``, one path or none, became ``teachers``, a list)."""
    stored = dict(stored)
    if "teacher" in stored:
        old = stored.pop("teacher")
        stored.setdefault("teachers", [old] if old else [])
    return stored
