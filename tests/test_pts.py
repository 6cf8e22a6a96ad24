"""300-W .pts folders on the real shared photos: reading, mapping to 15 points, detector crops, cache."""

from pathlib import Path

import numpy as np
import pytest

from fkd.model.errors import FkdError
from fkd.model.schema import INDEX, ibug68_to_kaggle15
from fkd.train.data.pts import load_pts_folder, read_pts
from fkd.train.evaluation.metrics import keypoint_metrics


def test_read_pts_gives_68_zero_based_points(shared: Path) -> None:
    path = next((shared / "data/300w/lfpw_train").glob("*.pts"))
    pts = read_pts(path)
    raw = np.array(path.read_text().split("{")[1].split("}")[0].split(), float).reshape(68, 2)
    assert pts.shape == (68, 2) and np.allclose(pts, raw - 1)


def test_68_to_15_mapping_puts_points_in_anatomical_order(shared: Path) -> None:
    kp = ibug68_to_kaggle15(read_pts(next((shared / "data/300w/helen_train").glob("*.pts"))))
    # subject's left is the image's right; brows above eyes above nose above mouth
    assert kp[INDEX["left_eye_center"], 0] > kp[INDEX["right_eye_center"], 0]
    assert kp[INDEX["left_eyebrow_inner_end"], 1] < kp[INDEX["left_eye_center"], 1] < kp[INDEX["nose_tip"], 1]
    assert kp[INDEX["nose_tip"], 1] < kp[INDEX["mouth_center_top_lip"], 1] < kp[INDEX["mouth_center_bottom_lip"], 1]


def test_folder_crops_frame_faces_like_kaggle_and_cache_round_trips(pts_folder: Path, tmp_path: Path) -> None:
    faces = load_pts_folder(pts_folder, cache_dir=tmp_path)
    assert len(faces) == 16 and faces.crops.shape == (16, 96, 96)
    assert faces.info["faces"] == 16 and faces.info["fallbacks"] == faces.fallback.sum()
    # labels sit where Kaggle's crops have them on average: NME of the mean layout stays modest
    from fkd.model.schema import KAGGLE_MEAN

    m = keypoint_metrics(np.broadcast_to(KAGGLE_MEAN, faces.points.shape), faces.points, faces.mask)
    assert m["nme"] < 0.15
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1
    again = load_pts_folder(pts_folder, cache_dir=tmp_path)
    assert again.ids == faces.ids and np.array_equal(again.crops, faces.crops)


def test_pts_without_68_points_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "face.pts"
    bad.write_text("version: 1\nn_points: 3\n{\n1 2\n3 4\n5 6\n}\n")
    with pytest.raises(FkdError, match=r"face\.pts: expected 68 points, found 3"):
        read_pts(bad)
