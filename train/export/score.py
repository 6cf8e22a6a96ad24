"""Calibrating the face score and measuring it on faces and negatives nobody trained on.

The score is judged on crops made the way the live app makes them: the detector's crop of
each held-out face (``FaceSet.crops``), and tracker crops, squares placed from the face's
true keypoints and jittered by the drift a tracker sees from one frame to the next, cut from
the face's context crop. Negatives are the held-out part of the negative bank.

- **Calibration** (validation buckets, < 100): the threshold keeps at least ``TARGET_TPR``
  of the validation face crops at or above it. Where the validation negatives leave room, it
  goes lower still, down to where a quarter of the negatives' budget (``FPR_SPEND``) is let
  through: a margin for the test faces and for the int8 twin, whose scores differ a little
  from the float network's that is calibrated.
- **Figures** (test buckets, 100..199, and the held-out clip's negatives): the share of
  faces at or above the threshold, for detector and tracker crops apart, and the share of
  negatives at or above it, overall and per kind.

For the training loop (H5)::

    sset = score_set(faces, bank, seed=0)              # once; faces = the 300-W FaceSet
    report = evaluate_score(module_predict(model), sset)
    report.summary()                                   # -> metrics.json; {"threshold": ...} -> face_score metadata
    save_score_figure(report, run_dir / "face_score.png")

and for exported weights, ``evaluate_score(Predictor(path).run, sset)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fkd.model.crop import CROP_SIZE, crop_face, square_from_center
from fkd.model.io.files import atomic_path
from fkd.model.points import point_set
from fkd.train.data.faceset import FaceSet, id_bucket
from fkd.train.data.negatives import HELD_OUT_BUCKETS, KINDS, VAL_BUCKETS, NegativeBank

#: (N, 96, 96) uint8 crops -> (keypoints (N, 15, 2), scores (N,) in 0..1)
Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

TARGET_TPR = 0.995  # the targets: faces kept ...
TARGET_FPR = 0.01  # ... and negatives let through
#: the share of validation negatives calibration may let through to gain a margin on faces
FPR_SPEND = TARGET_FPR / 4
#: frame-to-frame drift of a tracker's square, in face sides (centre) and log side: the face
#: moves a few percent of its size between frames, and the keypoints it is placed from err ~1 %
TRACKER_CENTRE_STD = 0.04
TRACKER_LOG_SIDE_STD = 0.04


@dataclass
class ScoreSet:
    """The crops the score is calibrated and judged on (all uint8 (N, 96, 96))."""

    val_faces: np.ndarray  # detector and tracker crops of the validation faces
    test_detector: np.ndarray
    test_tracker: np.ndarray
    val_negatives: np.ndarray
    val_kinds: np.ndarray
    test_negatives: np.ndarray
    test_kinds: np.ndarray


def held_out_faces(faces: FaceSet) -> tuple[FaceSet, FaceSet]:
    """(validation, test) faces by the id buckets; Kaggle rows (ids "<file>.csv/<row>") are left
    out, since their crops are Kaggle's own framing, not the detector's."""
    buckets = np.array([id_bucket(i) for i in faces.ids], dtype=np.int64)
    photo = np.array([".csv/" not in i for i in faces.ids], dtype=bool)
    val = np.flatnonzero(photo & (buckets < VAL_BUCKETS))
    test = np.flatnonzero(photo & (buckets >= VAL_BUCKETS) & (buckets < HELD_OUT_BUCKETS))
    return faces.subset(val), faces.subset(test)


def tracker_crops(faces: FaceSet, rng: np.random.Generator, per_face: int = 1) -> np.ndarray:
    """Crops placed from each face's true keypoints, jittered as a tracker's square drifts."""
    out = []
    for i in range(len(faces)):
        a = faces.context_to_crop[i]
        # crop = scale * context + shift; back to context pixels
        pts = (faces.points[i] - a[:, 2]) / np.array([a[0, 0], a[1, 1]])
        want = point_set(pts.shape[0]).square_from_points(pts, faces.mask[i])
        for _ in range(per_face):
            cx, cy = np.array(want.centre) + rng.normal(0, TRACKER_CENTRE_STD, 2) * want.side
            side = want.side * np.exp(rng.normal(0, TRACKER_LOG_SIDE_STD))
            out.append(crop_face(faces.context[i], square_from_center(cx, cy, side)))
    return np.stack(out) if out else np.zeros((0, CROP_SIZE, CROP_SIZE), np.uint8)


def score_set(faces: FaceSet, bank: NegativeBank, seed: int = 0, tracker_per_face: int = 2) -> ScoreSet:
    """Build once per run: the held-out face crops (detector, tracker) and held-out negatives."""
    rng = np.random.default_rng(seed)
    val, test = held_out_faces(faces)
    val_faces = np.concatenate([val.crops, tracker_crops(val, rng, tracker_per_face)])
    return ScoreSet(val_faces, test.crops, tracker_crops(test, rng, tracker_per_face),
                    bank.crops[bank.val_index], bank.kinds[bank.val_index],
                    bank.crops[bank.test_index], bank.kinds[bank.test_index])


def calibrate_threshold(face_scores: np.ndarray, target: float = TARGET_TPR,
                        negative_scores: np.ndarray | None = None, fpr_spend: float = FPR_SPEND) -> float:
    """The highest threshold t with at least ``target`` of ``face_scores`` >= t; with
    ``negative_scores``, lowered to the lowest t that lets at most ``fpr_spend`` of them
    through, when that is lower.

    A face counts as kept when its score is at or above the threshold (the live app's rule).
    """
    s = np.sort(np.asarray(face_scores, dtype=np.float64))
    if len(s) == 0:
        raise ValueError("no face scores to calibrate on")
    keep = int(np.ceil(target * len(s) - 1e-9))  # faces that must stay at or above t
    t = float(s[len(s) - max(keep, 1)])
    if negative_scores is None or len(negative_scores) == 0:
        return t
    neg = np.sort(np.asarray(negative_scores, dtype=np.float64))[::-1]
    allowed = int(np.floor(fpr_spend * len(neg) + 1e-9))  # negatives that may stay at or above t
    if allowed >= len(neg):
        return min(t, 0.0)
    return min(t, float(np.nextafter(neg[allowed], np.inf)))  # just above the first negative not allowed


def rate_at(scores: np.ndarray, threshold: float) -> float:
    """The share of ``scores`` at or above ``threshold`` (NaN for none)."""
    scores = np.asarray(scores)
    return float((scores >= threshold).mean()) if len(scores) else float("nan")


def predict_scores(predict: Predict, crops: np.ndarray, batch: int = 512) -> np.ndarray:
    parts = [np.asarray(predict(crops[i:i + batch])[1], np.float64).reshape(-1) for i in range(0, len(crops), batch)]
    return np.concatenate(parts) if parts else np.zeros(0)


@dataclass
class ScoreReport:
    """Calibrated threshold and held-out figures, with the raw scores for the picture."""

    threshold: float
    tpr_detector: float
    tpr_tracker: float
    fpr: float
    fpr_by_kind: dict[str, float]
    val_tpr: float
    val_fpr: float
    counts: dict[str, int]
    scores: dict[str, np.ndarray] = field(repr=False)
    test_kinds: np.ndarray = field(repr=False)

    def at(self, threshold: float) -> ScoreReport:
        """The same scores judged at another threshold (say, the one in a weights file's metadata)."""
        s, kinds = self.scores, self.test_kinds
        by_kind = {k: rate_at(s["test_negatives"][kinds == k], threshold) for k in self.fpr_by_kind}
        return ScoreReport(threshold, rate_at(s["test_detector"], threshold), rate_at(s["test_tracker"], threshold),
                           rate_at(s["test_negatives"], threshold), by_kind, rate_at(s["val_faces"], threshold),
                           rate_at(s["val_negatives"], threshold), self.counts, s, kinds)

    @property
    def meets_targets(self) -> bool:
        return min(self.tpr_detector, self.tpr_tracker) >= TARGET_TPR and self.fpr <= TARGET_FPR

    def summary(self) -> dict:
        """JSON-ready figures; its "threshold" is what weights metadata ``face_score`` needs."""
        return {"threshold": round(self.threshold, 6), "target_tpr": TARGET_TPR, "target_fpr": TARGET_FPR,
                "test_tpr_detector": round(self.tpr_detector, 5), "test_tpr_tracker": round(self.tpr_tracker, 5),
                "test_fpr": round(self.fpr, 5),
                "test_fpr_by_kind": {k: round(v, 5) for k, v in self.fpr_by_kind.items()},
                "val_tpr": round(self.val_tpr, 5), "val_fpr": round(self.val_fpr, 5), "counts": self.counts,
                "held_out": "faces in id buckets 0-99 (calibration) and 100-199 (figures); negatives from "
                            "those photos, synthetic patches hashed there, and one whole clip"}

    def lines(self) -> list[str]:
        c = self.counts
        out = [f"threshold {self.threshold:.4f} (keeps {100 * self.val_tpr:.2f} % of {c['val_faces']} validation "
               f"face crops; lets through {100 * self.val_fpr:.2f} % of {c['val_negatives']} validation negatives)",
               f"test faces kept: detector crops {100 * self.tpr_detector:.2f} % of {c['test_detector']}, "
               f"tracker crops {100 * self.tpr_tracker:.2f} % of {c['test_tracker']}  "
               f"(target >= {100 * TARGET_TPR:g} %)",
               f"test negatives let through: {100 * self.fpr:.2f} % of {c['test_negatives']}  "
               f"(target <= {100 * TARGET_FPR:g} %)"]
        for k, v in self.fpr_by_kind.items():
            out.append(f"  {k:<13} {100 * v:6.2f} % of {int((self.test_kinds == k).sum())}")
        return out


def evaluate_score(predict: Predict, sset: ScoreSet, target: float = TARGET_TPR, test: bool = True) -> ScoreReport:
    """Calibrate on the validation faces and negatives, then measure on the test faces and negatives.

    ``test=False`` scores only the validation crops (test figures come back NaN): for choosing
    between epochs, which must never look at the test split.
    """
    names = ("val_faces", "test_detector", "test_tracker", "val_negatives", "test_negatives")
    s = {name: predict_scores(predict, getattr(sset, name)) if test or name.startswith("val") else np.zeros(0)
         for name in names}
    t = calibrate_threshold(s["val_faces"], target, s["val_negatives"])
    kinds = sset.test_kinds if test else sset.test_kinds[:0]
    by_kind = {k: rate_at(s["test_negatives"][kinds == k], t) for k in KINDS if (kinds == k).any()}
    return ScoreReport(t, rate_at(s["test_detector"], t), rate_at(s["test_tracker"], t),
                       rate_at(s["test_negatives"], t), by_kind, rate_at(s["val_faces"], t),
                       rate_at(s["val_negatives"], t), {k: len(v) for k, v in s.items()}, s, kinds)


def module_predict(model, batch: int = 256) -> Predict:
    """A Predict for a torch KeypointNet (forward -> (keypoints, face_logit)), in eval mode while it runs."""
    import torch

    def run(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        was_training = model.training
        device = next(model.parameters()).device
        model.eval()
        kps, scores = [], []
        try:
            with torch.no_grad():
                for i in range(0, len(crops), batch):
                    x = torch.from_numpy(np.ascontiguousarray(crops[i:i + batch], np.float32)[:, None]).to(device)
                    kp, logit = model(x)
                    kps.append(kp.float().cpu().numpy())
                    scores.append(torch.sigmoid(logit.float()).cpu().numpy())
        finally:
            model.train(was_training)
        if not kps:
            count = getattr(getattr(model, "head", None), "out_channels", 15)
            return np.zeros((0, count, 2), np.float32), np.zeros(0, np.float32)
        return np.concatenate(kps), np.concatenate(scores)

    return run


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def save_score_figure(report: ScoreReport, path: Path) -> None:
    """Score histograms of test faces and negatives (log counts) and the ROC, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report.scores
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    bins = np.linspace(-16.2, 16.2, 82)
    for name, label, colour in (("test_negatives", "negatives", "C3"), ("test_detector", "faces, detector crops", "C0"),
                                ("test_tracker", "faces, tracker crops", "C2")):
        ax1.hist(_logit(s[name]), bins=bins, histtype="step", lw=1.5, color=colour, label=f"{label} ({len(s[name])})")
    ax1.axvline(_logit(np.array([report.threshold]))[0], color="k", ls="--", lw=1,
                label=f"threshold p={report.threshold:.3g}")
    ax1.set_yscale("log")
    ax1.set_ylim(0.7, 30 * max(len(v) for v in s.values()))  # headroom for the legend
    ax1.set_xlabel("face logit (score = sigmoid), clipped to p in [1e-7, 1-1e-7]")
    ax1.set_ylabel("crops")
    ax1.set_title("held-out test crops")
    ax1.legend(fontsize=8, loc="upper left")
    faces = np.concatenate([s["test_detector"], s["test_tracker"]])
    neg = s["test_negatives"]
    ts = np.unique(np.concatenate([faces, neg, [np.inf]]))[::-1]
    tpr = np.array([(faces >= t).mean() for t in ts]) if len(faces) else np.zeros(len(ts))
    fpr = np.array([(neg >= t).mean() for t in ts]) if len(neg) else np.zeros(len(ts))
    ax2.plot(np.maximum(fpr, 1e-5), tpr, color="C0")
    ax2.plot([max(report.fpr, 1e-5)], [rate_at(faces, report.threshold)], "ko",
             label=f"threshold: FPR {100 * report.fpr:.2f} %, TPR {100 * rate_at(faces, report.threshold):.2f} %")
    ax2.axvline(TARGET_FPR, color="C3", ls=":", lw=1, label="target FPR 1 %")
    ax2.axhline(TARGET_TPR, color="C2", ls=":", lw=1, label="target TPR 99.5 %")
    ax2.set_xscale("log")
    ax2.set_xlim(1e-5, 1)
    low = min(rate_at(faces, report.threshold), 0.99) if len(faces) else 0.99
    ax2.set_ylim(max(0.0, low - 0.05), 1.002)  # the region that matters: near-total recall
    ax2.set_xlabel("negatives let through (FPR)")
    ax2.set_ylabel("faces kept (TPR)")
    ax2.set_title("ROC, held-out test crops")
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
