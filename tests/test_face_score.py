"""Calibrating and judging the face score: the threshold rule, held-out crops, and real weights.

The test on real weights runs on FKD_TEST_WEIGHTS when it is set (for example
runs/interim/fkd.pt during a training session), else on the shipped weights, and skips
while those have no face score head.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fkd.model.artifact import Predictor
from fkd.train.data.faceset import FaceSet, id_bucket
from fkd.train.data.negatives import HELD_OUT_BUCKETS, VAL_BUCKETS, build_negative_bank
from fkd.train.data.pts import load_pts_folder
from fkd.train.export.score import (
    ScoreSet,
    calibrate_threshold,
    evaluate_score,
    held_out_faces,
    predict_scores,
    rate_at,
    save_score_figure,
    score_set,
    tracker_crops,
)


def test_threshold_is_the_highest_that_keeps_the_target_share() -> None:
    scores = np.random.default_rng(0).permutation(np.arange(1, 1001) / 1000.0)  # 0.001 .. 1.000
    t = calibrate_threshold(scores, 0.995)
    assert t == pytest.approx(0.006)  # 995 of 1000 at or above 0.006; at 0.007 only 994 are
    assert rate_at(scores, t) >= 0.995 > rate_at(scores, 0.007)
    assert calibrate_threshold(scores, 1.0) == pytest.approx(0.001)
    # ties: every score equal keeps them all
    assert rate_at(np.full(50, 0.8), calibrate_threshold(np.full(50, 0.8))) == 1.0
    # 199 faces: 99.5 % needs all but one (198.005 -> 199 kept)
    few = np.linspace(0.1, 0.9, 199)
    assert rate_at(few, calibrate_threshold(few)) == 1.0


def test_threshold_goes_lower_only_as_far_as_the_negatives_allow() -> None:
    faces = np.arange(1, 1001) / 1000.0  # the faces alone ask for 0.006
    # negatives scoring high never raise it above what the faces need
    assert calibrate_threshold(faces, 0.995, np.arange(400) / 1000.0) == pytest.approx(0.006)
    # negatives scoring low leave room: a quarter of the 1 % budget lets 1 of 400 through,
    # so the threshold drops to just above the second-highest negative
    negatives = np.arange(400) / 100_000.0  # 0 .. 0.00399
    t = calibrate_threshold(faces, 0.995, negatives, fpr_spend=0.0025)
    assert 0.00398 < t < 0.00399 + 1e-12 and t == pytest.approx(0.00398)
    assert rate_at(negatives, t) == 1 / 400 and rate_at(faces, t) > 0.995


def _brightness(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in network: the score is a crop's mean grey level (so bright = face)."""
    return np.zeros((len(crops), 15, 2), np.float32), crops.reshape(len(crops), -1).mean(1) / 255.0


def test_report_and_figure_on_a_score_with_a_known_answer(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)

    def crops(levels: np.ndarray) -> np.ndarray:
        return np.repeat(levels.astype(np.uint8)[:, None, None], 96, 1).repeat(96, 2)

    faces = crops(rng.integers(150, 256, 400))
    negatives = crops(np.concatenate([rng.integers(0, 120, 380), np.full(20, 200)]))  # 20 bright negatives
    kinds = np.array(["flat"] * 380 + ["noise"] * 20)
    sset = ScoreSet(faces, crops(rng.integers(150, 256, 300)), crops(np.full(100, 140)), negatives, kinds,
                    negatives, kinds)
    report = evaluate_score(_brightness, sset)
    assert report.threshold <= 151 / 255
    assert report.tpr_detector >= 0.995 and report.tpr_tracker == 0.0  # the tracker crops are all below 150
    assert report.fpr == pytest.approx(20 / 400)
    assert report.fpr_by_kind == {"flat": 0.0, "noise": 1.0}
    assert not report.meets_targets
    assert report.summary()["threshold"] == pytest.approx(report.threshold, abs=1e-6)
    at_half = report.at(0.5)
    assert at_half.fpr == pytest.approx(20 / 400) and at_half.tpr_tracker == 1.0  # 140/255 > 0.5
    # during training only validation crops are scored; the threshold is the same
    val_only = evaluate_score(_brightness, sset, test=False)
    assert val_only.threshold == report.threshold and np.isnan(val_only.fpr) and val_only.fpr_by_kind == {}
    path = tmp_path / "face_score.png"
    save_score_figure(report, path)
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 800


FOLDERS = ("afw", "helen_train", "lfpw_train")


@pytest.fixture(scope="module")
def held_out_photos(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 300-W photos of the test buckets (100..199; about 200 faces over the three
    folders, AFW's turned heads among them), copied to a 300-W style root."""
    root = tmp_path_factory.mktemp("heldout")
    for folder in FOLDERS:
        out = root / "data/300w" / folder
        out.mkdir(parents=True)
        for pts in sorted((shared / "data/300w" / folder).glob("*.pts")):
            if VAL_BUCKETS <= id_bucket(f"{folder}/{pts.stem}") < HELD_OUT_BUCKETS:
                shutil.copy(pts, out)
                shutil.copy(pts.with_suffix(".jpg"), out)
    return root


@pytest.fixture(scope="module")
def held_out_faceset(held_out_photos: Path) -> FaceSet:
    """Those photos cropped as training crops them: through the detector."""
    return FaceSet.concat([load_pts_folder(held_out_photos / "data/300w" / folder) for folder in FOLDERS])


def test_held_out_faces_and_tracker_crops_are_real_faces_framed_like_the_detectors(held_out_faceset: FaceSet) -> None:
    faces = held_out_faceset
    faces = FaceSet.concat([faces, FaceSet.from_crops(["training.csv/0"], faces.crops[:1], faces.points[:1],
                                                      faces.mask[:1])])  # a Kaggle row is never judged
    val, test = held_out_faces(faces)
    assert len(val) == 0 and len(test) == len(faces) - 1
    assert all(VAL_BUCKETS <= id_bucket(i) < HELD_OUT_BUCKETS for i in test.ids)
    tracked = tracker_crops(test, np.random.default_rng(0), per_face=2)
    assert tracked.shape == (2 * len(test), 96, 96) and tracked.dtype == np.uint8
    # the same face framed nearly the same way: tracker and detector crops correlate strongly
    det = np.repeat(test.crops, 2, axis=0).reshape(len(tracked), -1).astype(np.float64)
    trk = tracked.reshape(len(tracked), -1).astype(np.float64)
    det -= det.mean(1, keepdims=True)
    trk -= trk.mean(1, keepdims=True)
    corr = (det * trk).sum(1) / np.sqrt((det * det).sum(1) * (trk * trk).sum(1))
    assert np.median(corr) > 0.7


def _score_weights() -> Path:
    from fkd.model.metadata import default_weights

    return Path(os.environ.get("FKD_TEST_WEIGHTS", default_weights()))


def test_score_separates_held_out_faces_from_negatives(shared: Path, held_out_photos: Path,
                                                       held_out_faceset: FaceSet) -> None:
    predictor = Predictor(_score_weights(), threads=2)
    if not predictor.has_score:
        pytest.skip(f"{predictor.path} has no face score head (set FKD_TEST_WEIGHTS to weights that have one)")
    (held_out_photos / "video").mkdir(exist_ok=True)
    clip = held_out_photos / "video/webcam_640x360_backlit.mp4"
    if not clip.exists():
        shutil.copy(shared / "video/webcam_640x360_backlit.mp4", clip)  # the held-out clip
    faces = held_out_faceset
    bank = build_negative_bank(held_out_photos, None, frames_per_clip=10, synthetic_per_kind=100)
    real = np.array([not s.startswith("synthetic/") for s in bank.sources])
    assert bank.held_out[real].all()  # held-out photos and the held-out clip (synthetic patches: a fifth)
    sset = score_set(faces, bank)
    face_scores = predict_scores(predictor.run, np.concatenate([sset.test_detector, sset.test_tracker]))
    negative_scores = predict_scores(predictor.run, sset.test_negatives)
    assert len(face_scores) > 500 and len(negative_scores) > 500
    kept, through = rate_at(face_scores, predictor.threshold), rate_at(negative_scores, predictor.threshold)
    # the weights' own threshold on some 600 face crops and negatives: the issue's targets (99.5 %, 1 %)
    # with room for the small sample
    assert kept >= 0.98 and through <= 0.03, f"faces kept {kept:.4f}, negatives let through {through:.4f}"
    # and the two sets hardly overlap at all: most faces score above every negative but a few
    assert rate_at(face_scores, float(np.quantile(negative_scores, 0.99))) >= 0.98
