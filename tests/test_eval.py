"""fkd-eval: its JSON fields on a small Kaggle CSV and on a small folder of real 300-W photos."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fkd.model.artifact import Predictor
from fkd.model.schema import KEYPOINTS
from fkd.train.cli import eval_app
from fkd.train.data.kaggle import read_training_csv
from fkd.train.evaluation.evaluate import evaluate, predict_crops
from fkd.train.evaluation.metrics import keypoint_metrics

TOP_LEVEL = {"data", "weights", "runtime", "flip", "rmse96", "nme", "faces", "faces_with_nme", "per_keypoint",
             "fallbacks", "unreadable"}


def run_eval_json(*args: str) -> dict:
    result = CliRunner().invoke(eval_app, [*args, "--export", "-"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # the whole of stdout is one strict-JSON object


def check_fields(report: dict) -> None:
    assert set(report) == TOP_LEVEL
    assert list(report["per_keypoint"]) == list(KEYPOINTS)
    for figures in report["per_keypoint"].values():
        assert set(figures) == {"rmse96", "nme", "labelled"}
        assert isinstance(figures["labelled"], int)


def test_json_on_a_kaggle_csv(kaggle_training_csv: Path, tiny_weights: Path, tmp_path: Path) -> None:
    report = run_eval_json(str(kaggle_training_csv), "--weights", str(tiny_weights), "--cache-dir", str(tmp_path))
    check_fields(report)
    assert report["data"] == str(kaggle_training_csv) and report["weights"] == str(tiny_weights)
    assert report["faces"] == 10 and report["faces_with_nme"] == 6  # 4-point rows have no eye corners
    assert report["fallbacks"] == 0 and report["unreadable"] == 0
    per = report["per_keypoint"]
    assert per["nose_tip"]["labelled"] == 10 and per["mouth_left_corner"]["labelled"] == 6
    # the figures are those of the metrics module on the same predictions: flip-averaged unless --no-flip
    faces = read_training_csv(kaggle_training_csv)
    plain = run_eval_json(str(kaggle_training_csv), "--weights", str(tiny_weights), "--no-flip")
    for got, flip in ((report, True), (plain, False)):
        predictor = Predictor(tiny_weights, flip=flip)
        want = keypoint_metrics(predict_crops(predictor, faces.crops), faces.points, faces.mask)
        assert got["flip"] is flip
        assert got["rmse96"] == pytest.approx(want["rmse96"], rel=1e-5)
        assert got["nme"] == pytest.approx(want["nme"], rel=1e-5)
    assert plain["rmse96"] != pytest.approx(report["rmse96"], rel=1e-6)


def test_json_on_a_pts_folder(pts_folder: Path, tiny_weights: Path, tmp_path: Path) -> None:
    report = run_eval_json(str(pts_folder), "--weights", str(tiny_weights), "--cache-dir", str(tmp_path))
    check_fields(report)
    assert report["faces"] == report["faces_with_nme"] == 16
    assert all(k["labelled"] == 16 for k in report["per_keypoint"].values())
    assert 0 <= report["fallbacks"] <= 16 and report["unreadable"] == 0
    assert math.isfinite(report["rmse96"]) and report["nme"] > 0
    assert len(list(tmp_path.glob("*.npz"))) == 1  # crops cached where --cache-dir says


def test_undefined_figures_are_null_in_json_and_dash_in_the_table(
    kaggle_training_csv: Path, kaggle_faces: dict, tiny_weights: Path, tmp_path: Path
) -> None:
    from fkd.train.data.kaggle import write_training_csv

    only_four = {k: v[6:] for k, v in kaggle_faces.items()}  # no row has the outer eye corners: NME undefined
    path = write_training_csv(tmp_path / "four.csv", **only_four)
    report = run_eval_json(str(path), "--weights", str(tiny_weights))
    assert report["nme"] is None and report["faces_with_nme"] == 0
    assert report["per_keypoint"]["mouth_left_corner"] == {"rmse96": None, "nme": None, "labelled": 0}
    table = CliRunner().invoke(eval_app, [str(path), "--weights", str(tiny_weights)])
    assert table.exit_code == 0, table.output
    mouth = next(line for line in table.stdout.splitlines() if "mouth_left_corner" in line)
    assert mouth.replace("│", " ").split() == ["mouth_left_corner", "0", "-", "-"]


def test_table_lists_every_keypoint_and_the_overall_row(kaggle_training_csv: Path, tiny_weights: Path) -> None:
    result = CliRunner().invoke(eval_app, [str(kaggle_training_csv), "--weights", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in (*KEYPOINTS, "overall", "RMSE96 (px)", "NME (%)"):
        assert name in out
    report = evaluate(kaggle_training_csv, tiny_weights)
    overall = next(line for line in out.splitlines() if "overall" in line).replace("│", " ").split()
    assert overall == ["overall", str(6 * 15 + 4 * 4), f"{report['rmse96']:.2f}", f"{100 * report['nme']:.2f}"]
    assert np.isfinite(report["rmse96"])
