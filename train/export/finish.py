"""The end of a run: the best epoch exported, its face-score threshold calibrated, the report written.

``finish`` turns ``best.pt`` into the weights file (TorchScript + metadata, ``fkd.pt``) and its
int8 ONNX twin, measures the label offset on the training split and writes it into the
metadata, reports the untouched test split once, and draws the pictures. The threshold is
calibrated on the float network first, then again on the int8 twin when that is kept: the
twin is what the live app runs.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from fkd.model import torch_weights
from fkd.model.artifact import Predictor
from fkd.model.io.files import json_text, write_text_atomic
from fkd.model.net import KeypointNet, count_parameters
from fkd.train.config import TrainConfig
from fkd.train.data.batches import Negatives
from fkd.train.data.faceset import FaceSet
from fkd.train.data.negatives import NegativeBank
from fkd.train.data.splits import Splits, evaluate_split, predict
from fkd.train.export import plots
from fkd.train.export.quantize import quantise_twin
from fkd.train.export.score import (
    ScoreSet,
    calibrate_threshold,
    evaluate_score,
    module_predict,
    rate_at,
    save_score_figure,
    score_set,
)
from fkd.train.teachers import label_offset


def finish(cfg: TrainConfig, out: Path, sp: Splits, elapsed: float, device: torch.device, console: Console,
           negatives: Negatives, process_seconds: float = 0.0, bank: NegativeBank | None = None) -> dict:
    """Export the best epoch as TorchScript + an int8 ONNX twin with its metadata; report the
    untouched test split once; draw predictions and the face-score picture."""
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    model = KeypointNet(width=cfg.width, keypoints=cfg.points)
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
                     "dense_weight": cfg.dense_weight, "score_only": cfg.score_only, "points": cfg.points,
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
    extra.update(label_offset.metadata(offset, int(primary.sum()),
                                       f"training split, {cfg.points}-point faces, float32"))
    if score_meta is not None:
        extra["face_score"] = score_meta
    torch_weights.export(model, out / "fkd.pt", extra)
    q = quantise_twin(out / "fkd.pt", sp.train.crops, sp.val.crops, sp.val.points, sp.val.mask)
    console.print(f"int8 ONNX twin: val NME {100 * q['nme_int8']:.2f} % against {100 * q['nme_float32']:.2f} % "
                  f"in float32, " + ("kept" if q["written"] else "rejected; the float32 twin stays"))
    if q["written"] and sset is not None and score_meta is not None:
        # the live app runs the int8 twin: calibrate the threshold on what ships, then write it in
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


def calibrate_score(model: KeypointNet, sp: Splits, negatives: Negatives, device: torch.device, cfg: TrainConfig,
                    out: Path, bank: NegativeBank | None = None) -> tuple[dict | None, dict, ScoreSet | None]:
    """The face-score threshold from held-out faces and negatives, its figures and its picture.

    With the negative bank, ``train/export/score.py`` calibrates on the validation buckets (detector
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
    """The face-score picture of a run without a negative bank: both histograms and the threshold
    (with a bank, ``score.save_score_figure`` draws the buckets instead)."""
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
