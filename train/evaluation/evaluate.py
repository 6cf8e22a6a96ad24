"""fkd-eval's core: run shipped or trained weights on labelled faces, scored as training scores them.

The faces go through the same loaders as fkd-train (Kaggle CSV, or .pts photos through the
live app's detector and crop), so an evaluation measures what the live app would show.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from fkd.model.artifact import Predictor
from fkd.model.errors import FkdError
from fkd.train.data.load import load_sources
from fkd.train.evaluation.metrics import keypoint_metrics


def predict_crops(predictor: Predictor, crops: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, 96, 96) crops -> (N, K, 2) points (the weights' own), in batches so memory stays flat
    on 7049 faces."""
    if len(crops) == 0:
        return predictor(crops)
    return np.concatenate([predictor(crops[i:i + batch_size]) for i in range(0, len(crops), batch_size)])


def evaluate(data_path: Path, weights: Path | None = None, cache_dir: Path | None = Path(".cache"),
             progress=None, flip: bool = True, points: int | None = None) -> dict:
    """Metrics of ``weights`` (default: the shipped model of ``points`` points, 15 unless told) on a
    Kaggle-format CSV or a .pts folder.

    The result is keypoint_metrics' dict for the weights' own points plus where the figures came
    from, whether answers were flip-averaged (as fkd-predict's are by default), and how many faces
    needed the landmark fallback or were skipped as unreadable images. A 68-point model is scored
    on its 68 points (NME over the outer eye corners, iBUG 37 and 46) on its own whole-face crops,
    and ``kaggle15`` holds the figures of the 15 keypoints its 68 give.
    """
    path = Path(data_path)
    if not path.exists():
        raise FkdError(f"{path}: no such file or folder.")
    if path.is_file() and path.suffix.lower() != ".csv":
        raise FkdError(f"{path}: expected a Kaggle-format .csv file or a folder of photos with .pts files.")
    predictor = Predictor(weights, flip=flip, points=points)  # before the data, so bad weights fail fast
    count = predictor.points.count
    if count != 15 and path.is_file():
        raise FkdError(f"{path}: a Kaggle CSV has no {count}-point labels; a {count}-point model is scored on "
                       "folders of .pts photos.")
    faces = load_sources([path], Path(cache_dir) if cache_dir else None, progress=progress, points=count)
    if len(faces) == 0:
        raise FkdError(f"{path}: no labelled faces to evaluate.")
    pred = predict_crops(predictor, faces.crops)
    metrics = keypoint_metrics(pred, faces.points, faces.mask)
    if count != 15:
        ps = predictor.points
        kaggle = keypoint_metrics(ps.kaggle15(pred), ps.kaggle15(faces.points), np.ones((len(faces), 15), bool))
        metrics["kaggle15"] = {k: kaggle[k] for k in ("rmse96", "nme", "faces_with_nme")}
    return {
        "data": str(path),
        "weights": str(predictor.path),
        "runtime": predictor.runtime,
        "flip": flip,
        **metrics,
        "fallbacks": int(faces.fallback.sum()),
        "unreadable": int(faces.info.get("unreadable", 0)),
    }


def _finite_or_none(value):
    """JSON has no NaN: an undefined figure (no labelled point) becomes null."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metrics_json(metrics: dict) -> str:
    """One strict-JSON object (NME as a fraction, undefined figures as null)."""
    return json.dumps(_finite_or_none(metrics), indent=1, allow_nan=False)


def _cell(value: float, scale: float = 1.0, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value * scale:.{digits}f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def metrics_table(metrics: dict) -> Group:
    """Per-keypoint and overall RMSE96 and NME as a rich table, then where they came from.

    '-' marks a figure that is undefined because no point of that kind is labelled.
    """
    table = Table(title=f"{_plural(metrics['faces'], 'face')} from {metrics['data']}", title_justify="left")
    table.add_column("keypoint")
    table.add_column("labelled", justify="right")
    table.add_column("RMSE96 (px)", justify="right")
    table.add_column("NME (%)", justify="right")
    per = metrics["per_keypoint"]
    for name in per:
        k = per[name]
        table.add_row(name, str(k["labelled"]), _cell(k["rmse96"]), _cell(k["nme"], 100))
    table.add_section()
    table.add_row("overall", str(sum(k["labelled"] for k in per.values())), _cell(metrics["rmse96"]),
                  _cell(metrics["nme"], 100), style="bold")
    if "kaggle15" in metrics:  # a 68-point model: the 15 Kaggle keypoints its 68 give
        k15 = metrics["kaggle15"]
        table.add_row("the 15 they give", str(15 * k15["faces_with_nme"]), _cell(k15["rmse96"]),
                      _cell(k15["nme"], 100))
    flipped = ", flip-averaged" if metrics.get("flip") else ""
    notes = [f"weights: {metrics['weights']} ({metrics['runtime']}{flipped})",
             f"NME over the {_plural(metrics['faces_with_nme'], 'face')} with both outer eye corners labelled"]
    if metrics.get("fallbacks"):
        notes.append(f"{_plural(metrics['fallbacks'], 'crop')} from the landmark fallback (the detector missed)")
    if metrics.get("unreadable"):
        notes.append(f"{_plural(metrics['unreadable'], 'unreadable image')} skipped")
    return Group(table, *(Text(n, style="dim") for n in notes))
