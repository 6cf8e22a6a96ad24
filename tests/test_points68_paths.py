"""Every path takes a 68-point weights file as well as a 15-point one: fkd-predict, fkd-live,
the Python API, fkd-eval and fkd-submit, with ``points68`` in the records beside the 15 they
give, the contours on the overlay, and ``--points 68`` refused with a 15-point file. Run on a
68-point network fitted for a few steps (``fitted_weights68``) until the trained one ships: these check the
plumbing, the shipped model's accuracy is the card's business."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fkd.model.points import IBUG68_SET
from fkd.model.schema import IBUG68_CONTOURS, KEYPOINTS
from fkd.realtime.api import Landmarker
from fkd.realtime.cli import live_app, predict_app
from fkd.realtime.outputs.draw import draw_faces
from fkd.realtime.outputs.records import RECORD_VERSION, Face, keypoints_of
from fkd.train.cli import eval_app

pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture(scope="module")
def photos(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos68")
    for pts in sorted((shared / "data/300w/lfpw_train").glob("*.pts"))[:4]:
        shutil.copy(pts, root)
        shutil.copy(pts.with_suffix(".jpg"), root)
    return root


def check_face(face: dict) -> None:
    """A 68-point face record: its 68 in iBUG order, and its keypoints the 15 those give."""
    p68 = np.array(face["points68"], np.float64)
    assert p68.shape == (68, 2)
    assert list(face["keypoints"]) == list(KEYPOINTS)
    assert np.allclose(keypoints_of(face), IBUG68_SET.kaggle15(p68), atol=0.02)


def test_fkd_predict_exports_points68_beside_the_15(photos: Path, fitted_weights68: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces.jsonl"
    result = CliRunner().invoke(predict_app, [str(photos), "--weights", str(fitted_weights68), "--threshold", "0",
                                              "--export", str(out), "--output", str(tmp_path / "annotated")])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4 and all(r["version"] == RECORD_VERSION == 1 for r in records)
    faces = [f for r in records for f in r["faces"]]
    assert faces, "the detector found no face in four 300-W photos"
    for face in faces:
        check_face(face)


def test_points_68_with_a_15_point_file_is_refused_in_one_sentence(photos: Path, tiny_weights: Path) -> None:
    for app, args in ((predict_app, [str(photos)]), (live_app, ["--video", str(photos / "none.mp4")])):
        result = CliRunner().invoke(app, [*args, "--points", "68", "--weights", str(tiny_weights)])
        assert result.exit_code != 0
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines == [f"error: --points 68 needs a 68-point weights file, and {tiny_weights} predicts 15 "
                         "points."], result.output


def test_fkd_live_exports_points68_and_draws_contours(shared: Path, fitted_weights68: Path, tmp_path: Path) -> None:
    clip = tmp_path / "short.avi"
    cap = cv2.VideoCapture(str(shared / "video/talking_head_512.mp4"))
    ok, frame = cap.read()
    assert ok, "the shared clip cannot be read"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, frame.shape[1::-1])
    for _ in range(12):
        writer.write(frame)
        _, frame = cap.read()
    writer.release()
    cap.release()
    out = tmp_path / "k.jsonl"
    result = CliRunner().invoke(live_app, ["--video", str(clip), "--weights", str(fitted_weights68), "--headless",
                                           "--threshold", "0", "--export", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 12 and all(r["version"] == 1 for r in records)
    faces = [f for r in records for f in r["faces"]]
    assert len(faces) >= 6
    for face in faces:
        check_face(face)


def test_the_overlay_draws_the_contours_as_lines() -> None:
    p68 = IBUG68_SET.template * 4 + 20  # the mean face, 4x, in a 440-px image
    face = Face(0, (20, 20, 400, 400), IBUG68_SET.kaggle15(p68), 0.9, points68=p68)
    image = np.zeros((440, 440, 3), np.uint8)
    draw_faces(image, [face], axes=False)
    lit = image.any(-1)
    jaw = p68[list(IBUG68_CONTOURS["jaw"][0])]
    middle = np.round((jaw[3] + jaw[4]) / 2).astype(int)  # between two jaw points: on the line only
    assert lit[middle[1] - 1:middle[1] + 2, middle[0] - 1:middle[0] + 2].any()
    mouth = IBUG68_CONTOURS["outer_lips"][0]
    closing = np.round((p68[mouth[0]] + p68[mouth[-1]]) / 2).astype(int)  # the loop closes
    assert lit[closing[1] - 1:closing[1] + 2, closing[0] - 1:closing[0] + 2].any()


def test_the_api_takes_points_68(photos: Path, fitted_weights68: Path, tiny_weights: Path) -> None:
    image = cv2.imread(str(sorted(photos.glob("*.jpg"))[0]))
    marker = Landmarker(fitted_weights68, threshold=0.0, points=68)
    faces = marker.landmarks(image)
    assert faces and all(f.points68 is not None and f.points68.shape == (68, 2) for f in faces)
    boxed = marker.landmarks(image, boxes=[faces[0].box])
    assert len(boxed) == 1 and boxed[0].points68 is not None
    assert np.allclose(boxed[0].keypoints, IBUG68_SET.kaggle15(boxed[0].points68), atol=1e-3)
    assert all(f.points68 is None for f in Landmarker(tiny_weights, threshold=0.0).landmarks(image))
    with pytest.raises(Exception, match="--points 68 needs a 68-point weights file"):
        Landmarker(tiny_weights, points=68)


def test_fkd_eval_scores_68_points_and_the_15_they_give(pts_folder: Path, fitted_weights68: Path,
                                                        tmp_path: Path) -> None:
    result = CliRunner().invoke(eval_app, [str(pts_folder), "--weights", str(fitted_weights68), "--export", "-",
                                           "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert len(metrics["per_keypoint"]) == 68 and metrics["faces"] == 16
    assert metrics["nme"] > 0 and metrics["kaggle15"]["nme"] > 0 and metrics["kaggle15"]["faces_with_nme"] == 16


def test_fkd_submit_takes_the_15_the_68_give(kaggle_faces: dict, fitted_weights68: Path, tmp_path: Path) -> None:
    """Kaggle's submission from a 68-point model: the values are its 15 derived keypoints."""
    from fkd.model.artifact import Predictor
    from fkd.train.cli import submit_app
    from fkd.train.data.kaggle import write_test_csv

    test_csv = write_test_csv(tmp_path / "test.csv", np.arange(1, 11), kaggle_faces["images"])
    lookup = tmp_path / "IdLookupTable.csv"
    lookup.write_text("RowId,ImageId,FeatureName,Location\n1,3,nose_tip_x,\n2,3,left_eye_center_y,\n")
    out = tmp_path / "s.csv"
    result = CliRunner().invoke(submit_app, [str(test_csv), str(lookup), "-o", str(out), "--weights",
                                             str(fitted_weights68), "--points", "68"])
    assert result.exit_code == 0, result.output
    want = Predictor(fitted_weights68, flip=True).kaggle15(kaggle_faces["images"][2:3])[0]
    got = [float(line.split(",")[1]) for line in out.read_text().splitlines()[1:]]
    assert got == pytest.approx([want[KEYPOINTS.index("nose_tip"), 0], want[KEYPOINTS.index("left_eye_center"), 1]],
                                abs=1e-3)
