"""One weights format for both models: the metadata declares the points and the crop, loading
follows it, and files that do not fit are still refused in one sentence."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from test_weights_refusal import WEIGHTS, refused  # one home for the refusal's checks

from fkd.model.artifact import Predictor
from fkd.model.errors import FkdError
from fkd.model.metadata import base_metadata, check_metadata, default_weights
from fkd.model.points import IBUG68_SET, KAGGLE15, WHOLE_FACE_CONVENTION
from fkd.model.schema import IBUG68_FLIP_PERMUTATION, KEYPOINTS


def test_68_point_metadata_declares_points_and_crop() -> None:
    meta = base_metadata(IBUG68_SET)
    check_metadata(meta, WEIGHTS)
    assert meta["points"] == {"set": "ibug68", "count": 68, "names": list(IBUG68_SET.names),
                              "flip": list(IBUG68_FLIP_PERMUTATION)}
    assert meta["crop_convention"] == WHOLE_FACE_CONVENTION.as_dict()
    assert meta["output"].startswith("N,68,2")


def test_68_point_files_that_do_not_fit_are_refused() -> None:
    meta = base_metadata(IBUG68_SET)
    meta["crop_convention"] = KAGGLE15.convention.as_dict()  # 68 points on the 15's crop
    assert "crop convention" in refused(meta)
    meta = base_metadata(IBUG68_SET)
    meta["points"]["flip"] = list(range(68))  # no mirror relabelling
    assert "flip partners" in refused(meta)
    meta = base_metadata(IBUG68_SET)
    del meta["points"]
    assert "flip partners" in refused(meta)
    meta = base_metadata(IBUG68_SET)
    meta["keypoints"] = meta["keypoints"][:67]
    assert "keypoints" in refused(meta)


def test_old_15_point_metadata_without_a_points_block_still_passes() -> None:
    meta = copy.deepcopy(base_metadata())
    del meta["points"]
    check_metadata(meta, WEIGHTS)
    meta["keypoints"] = list(IBUG68_SET.names)  # 68 names on the 15's crop and without flip partners
    refused(meta)


def test_the_shipped_15_point_file_loads_unchanged() -> None:
    predictor = Predictor(default_weights())
    assert predictor.points is KAGGLE15 and predictor.runtime == "onnx"
    assert "points" not in predictor.meta  # shipped before the 68: nothing in it changed
    kp, _ = predictor.run(np.zeros((1, 96, 96), np.uint8))
    assert kp.shape == (1, len(KEYPOINTS), 2)


def test_a_68_point_file_runs_with_flip_averaging_and_gives_the_15(tiny_weights68: Path) -> None:
    predictor = Predictor(tiny_weights68, flip=True)
    assert predictor.points is IBUG68_SET and predictor.runtime == "onnx"
    crops = np.random.default_rng(0).integers(0, 256, (3, 96, 96), dtype=np.uint8)
    points, scores = predictor.run(crops)
    assert points.shape == (3, 68, 2) and scores.shape == (3,)
    # flip averaging: the answer for a mirrored crop is the mirror of the answer (relabelled)
    mirrored = predictor(crops[..., ::-1])
    assert np.allclose(IBUG68_SET.mirror(mirrored), points, atol=1e-3)
    assert np.allclose(predictor.kaggle15(crops), IBUG68_SET.kaggle15(points), atol=1e-4)


def test_points_must_match_the_file(tiny_weights: Path, tiny_weights68: Path) -> None:
    with pytest.raises(FkdError) as caught:
        Predictor(tiny_weights, points=68)
    message = str(caught.value)
    assert message == (f"--points 68 needs a 68-point weights file, and {tiny_weights} predicts 15 points.")
    assert Predictor(tiny_weights68, points=68).points is IBUG68_SET
