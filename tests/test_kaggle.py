"""Kaggle training.csv / test.csv parsing on small files written in the competition's exact format."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fkd.model.errors import FkdError
from fkd.model.schema import CSV_COLUMNS, INDEX
from fkd.train.data.kaggle import read_test_csv, read_training_csv, write_test_csv


def test_written_file_has_kaggle_columns_and_empty_cells(kaggle_training_csv: Path) -> None:
    header, full, *_, four = kaggle_training_csv.read_text().splitlines()
    assert header.split(",") == [*CSV_COLUMNS, "Image"]
    assert "" not in full.split(",")[:30]
    assert four.split(",")[:30].count("") == 30 - 8  # a 4-point row: 8 values, 22 empty cells
    assert len(four.rsplit(",", 1)[1].split(" ")) == 96 * 96


def test_missing_cells_become_mask_false_and_are_not_filled(kaggle_training_csv: Path, kaggle_faces: dict) -> None:
    faces = read_training_csv(kaggle_training_csv)
    assert len(faces) == 10
    assert np.array_equal(faces.mask, kaggle_faces["mask"])
    assert np.array_equal(faces.crops, kaggle_faces["images"])
    m = faces.mask
    assert np.allclose(faces.points[m], kaggle_faces["points"][m], atol=1e-4)
    # unlabelled points are neither forward-filled from the row above nor mean-filled
    nose = INDEX["nose_tip"]
    brow = INDEX["left_eyebrow_inner_end"]
    assert not m[6:, brow].any() and m[6:, nose].all()
    assert not np.isclose(faces.points[6:, brow], faces.points[5, brow]).all(-1).any()
    assert not np.isclose(faces.points[6:, brow], faces.points[:6, brow].mean(0)).all(-1).any()


def test_both_label_subsets_are_kept(kaggle_training_csv: Path) -> None:
    faces = read_training_csv(kaggle_training_csv)
    labelled = faces.mask.sum(1)
    assert (labelled == 15).sum() == 6 and (labelled == 4).sum() == 4
    assert faces.info == {"faces": 10, "fully_labelled": 6}


def test_point_counts_only_when_both_coordinates_are_given(kaggle_training_csv: Path) -> None:
    df = pd.read_csv(kaggle_training_csv, dtype={"Image": str})
    df.loc[0, "nose_tip_y"] = np.nan
    df.to_csv(kaggle_training_csv, index=False)
    faces = read_training_csv(kaggle_training_csv)
    assert not faces.mask[0, INDEX["nose_tip"]] and faces.mask[0].sum() == 14


def test_wrong_columns_is_one_sentence_naming_the_file(kaggle_training_csv: Path) -> None:
    df = pd.read_csv(kaggle_training_csv, dtype={"Image": str})
    df.drop(columns=["nose_tip_x", "nose_tip_y"]).to_csv(kaggle_training_csv, index=False)
    with pytest.raises(FkdError, match=r"training\.csv: missing the column\(s\) nose_tip_x, nose_tip_y") as e:
        read_training_csv(kaggle_training_csv)
    assert str(e.value).count(". ") == 0 and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("image", "why"),
    [(" ".join(["7"] * (96 * 96 - 1)), "9215 pixel values, expected 9216"),
     (" ".join(["7"] * 100 + ["dark"] + ["7"] * (96 * 96 - 101)), "not a whole number"),
     (" ".join(["300"] * 96 * 96), "outside 0..255")],
    ids=["short", "non-number", "out-of-range"],
)
def test_bad_pixel_string_names_the_row(kaggle_training_csv: Path, image: str, why: str) -> None:
    df = pd.read_csv(kaggle_training_csv, dtype={"Image": str})
    df.loc[3, "Image"] = image
    df.to_csv(kaggle_training_csv, index=False)
    with pytest.raises(FkdError, match=rf"training\.csv: row 5\b.*{why}"):  # data row 4 is line 5
        read_training_csv(kaggle_training_csv)


def test_non_number_label_names_the_file(kaggle_training_csv: Path) -> None:
    df = pd.read_csv(kaggle_training_csv, dtype={"Image": str})
    df["nose_tip_x"] = df["nose_tip_x"].astype(object)
    df.loc[2, "nose_tip_x"] = "n/a?"
    df.to_csv(kaggle_training_csv, index=False)
    with pytest.raises(FkdError, match=r"training\.csv: a keypoint column holds something that is not a number"):
        read_training_csv(kaggle_training_csv)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FkdError, match=r"nowhere\.csv: no such file"):
        read_training_csv(tmp_path / "nowhere.csv")
    with pytest.raises(FkdError, match=r"nowhere\.csv: no such file"):
        read_test_csv(tmp_path / "nowhere.csv")


def test_test_csv_round_trips(tmp_path: Path, kaggle_faces: dict) -> None:
    ids = np.arange(101, 111)
    ids_read, images = read_test_csv(write_test_csv(tmp_path / "test.csv", ids, kaggle_faces["images"]))
    assert np.array_equal(ids_read, ids) and np.array_equal(images, kaggle_faces["images"])
    assert (tmp_path / "test.csv").read_text().startswith("ImageId,Image\n101,")
