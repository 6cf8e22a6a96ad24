"""Markdown tables of lever runs (bench/levers.sh), from their run folders and exported weights.

    python bench/levers_table.py runs/lever30-base runs/lever30-mtfl ... [--plot curves.png]

The first table has, per run: validation NME of the best epoch (the exported weights, float32),
the same weights flip-averaged (``Predictor(flip=True)`` on the int8 twin, as fkd-predict runs
them), the untouched test split (hash buckets 100-199) both ways, MTFL's eye-normalised NME
(from the run's metrics.json), and the median seconds per epoch. The 300-W columns are the
network alone, without the label offset that newer runs store (``fkd.train.teachers.label_offset``), so
runs from before and after that feature compare like for like; ``bench/label_offset.py`` gives
each run's figures with it. Levers are chosen on the validation columns only; the test
columns are there to report, as the issue asks, not to choose by. The second table gives
validation NME per keypoint, one column per run, so a lever that helps some points and hurts
others shows (MTFL's hand-marked eye centres, say). ``--plot`` also draws every run's validation
curve and training loss on shared axes (``fkd.train.export.plots.run_comparison``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import numpy as np

from fkd.model.artifact import Predictor
from fkd.model.schema import KEYPOINTS
from fkd.train.config import upgraded_config
from fkd.train.data.load import load_sources
from fkd.train.evaluation.evaluate import predict_crops
from fkd.train.evaluation.metrics import keypoint_metrics
from fkd.train.export.plots import run_comparison

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "300w"


def pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def recipe(cfg: dict) -> str:
    parts = [f"data {'+mtfl' if any('mtfl' in d for d in cfg['data']) else '300w'}"]
    if cfg.get("heatmap_weight"):
        parts.append(f"heatmap {cfg['heatmap_weight']}")
    if cfg.get("dense_weight"):
        parts.append(f"68-point head {cfg['dense_weight']}")
    if cfg.get("augment", {}).get("occlusion"):
        parts.append("strong aug")
    if cfg.get("augment", {}).get("elastic_px"):
        parts.append(f"elastic {cfg['augment']['elastic_px']} px")
    if cfg.get("loss", "smoothl1") != "smoothl1":
        parts.append(f"loss {cfg['loss']}")
    parts.append(f"EMA {cfg.get('ema') or 'off'}")
    teachers = upgraded_config(cfg).get("teachers")  # runs from before --teacher could repeat hold one path
    if teachers:
        parts.append(f"teacher {' + '.join(Path(t).parent.name or Path(t).name for t in teachers)}")
    if cfg.get("init"):
        parts.append(f"init {cfg['init']}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of fkd-train (--output)")
    parser.add_argument("--plot", type=Path, help="also save the runs' learning curves to this PNG")
    args = parser.parse_args()
    runs: list[Path] = args.runs
    faces = load_sources([SHARED], Path(".cache"))
    _, val, test = faces.split()
    per_keypoint = {}
    print("| run | epochs (best) | val NME % | val, flip-averaged | test NME % | test, flip-averaged | "
          "MTFL val eye-NME % | s/epoch | recipe |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        history = json.loads((run / "history.json").read_text())
        cfg = json.loads((run / "config.json").read_text())
        metrics = json.loads((run / "metrics.json").read_text())  # MTFL's figure only
        best = min(history, key=lambda h: h["val_nme"] if h["val_nme"] is not None else math.inf)
        secs = sorted(b["seconds"] - a["seconds"] for a, b in itertools.pairwise(history))
        median = secs[len(secs) // 2] if secs else float("nan")
        plain = Predictor(run / "fkd.pt", runtime="torchscript").without_label_offset()
        flipped = Predictor(run / "fkd.pt", flip=True).without_label_offset()
        cells = []
        for index in (val, test):
            for predictor in (plain, flipped):
                got = keypoint_metrics(predict_crops(predictor, faces.crops[index]), faces.points[index],
                                       faces.mask[index])
                cells.append(pct(got["nme"]))
                per_keypoint.setdefault(run.name, got["per_keypoint"])  # the first: validation, float32
        print(f"| {run.name} | {len(history)} ({best['epoch']}) | {' | '.join(cells)} | "
              f"{pct(metrics.get('mtfl', {}).get('nme'))} | {median:.1f} | {recipe(cfg)} |")
    print()
    print("| validation NME % per keypoint | " + " | ".join(per_keypoint) + " |")
    print("|---|" + "---|" * len(per_keypoint))
    for name in KEYPOINTS:
        values = [per_keypoint[r][name]["nme"] for r in per_keypoint]
        low = np.nanmin(values)
        print(f"| {name} | " + " | ".join(f"**{pct(v)}**" if v == low else pct(v) for v in values) + " |")
    if args.plot:
        run_comparison({run.name: json.loads((run / "history.json").read_text()) for run in runs}, args.plot)
        print(f"\ncurves -> {args.plot}")


if __name__ == "__main__":
    main()
