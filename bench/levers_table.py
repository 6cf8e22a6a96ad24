"""A markdown table of short lever runs, from their run folders: validation figures only.

    python bench/levers_table.py runs/lever-base runs/lever-mtfl ...

The untouched test split is left out on purpose: levers are chosen on validation alone,
and the test figure is read once, for the final run.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

POINTS = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_left_corner", "mouth_right_corner")


def pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def row(run: Path) -> str:
    history = json.loads((run / "history.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    best = min(history, key=lambda h: h["val_nme"] if h["val_nme"] is not None else math.inf)
    last = history[-1]
    per = metrics.get("per_keypoint", {})
    five = " / ".join(pct(per.get(p, {}).get("nme")) for p in POINTS)
    secs = [b["seconds"] - a["seconds"] for a, b in itertools.pairwise(history)]
    median = sorted(secs)[len(secs) // 2] if secs else float("nan")
    mtfl = metrics.get("mtfl", {}).get("nme")
    return (f"| {run.name} | {len(history)} | {pct(best['val_nme'])} (ep {best['epoch']}) | {pct(last['val_nme'])} | "
            f"{pct(last.get('val_nme_without_ema'))} | {five} | {pct(mtfl)} | {median:.1f} | "
            f"ema {cfg.get('ema')}, neg {cfg.get('negatives')}, hm {cfg.get('heatmap_weight')}, "
            f"data {'+mtfl' if any('mtfl' in d for d in cfg['data']) else '300w'} |")


def main() -> None:
    print("| run | epochs | best val NME % | last val NME % (EMA) | last, without EMA | "
          "eyes L/R, nose, mouth L/R NME % | MTFL val eye-NME % | s/epoch | recipe |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        print(row(Path(arg)))


if __name__ == "__main__":
    main()
