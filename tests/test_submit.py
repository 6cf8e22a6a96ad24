"""fkd-submit against the competition's real IdLookupTable.csv and SampleSubmission.csv."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fkd.model.errors import FkdError
from fkd.model.schema import CSV_COLUMNS
from fkd.train.cli import submit_app
from fkd.train.data.kaggle import write_test_csv
from fkd.train.evaluation.submit import lookup_locations, write_submission


@pytest.fixture(scope="module")
def kaggle_dir(shared: Path) -> Path:
    return shared / "data/kaggle"


@pytest.fixture(scope="module")
def synthetic_test_csv(kaggle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """test.csv with every ImageId the real lookup table asks for, in shuffled order, and random pixels."""
    ids = np.unique(pd.read_csv(kaggle_dir / "IdLookupTable.csv")["ImageId"])
    assert len(ids) == 1783
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (len(ids), 96, 96), dtype=np.uint8)
    return write_test_csv(tmp_path_factory.mktemp("kaggle") / "test.csv", rng.permutation(ids), images)


def test_fkd_submit_matches_sample_submission_row_for_row(
    kaggle_dir: Path, synthetic_test_csv: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sub" / "submission.csv"
    result = CliRunner().invoke(submit_app, [str(synthetic_test_csv), str(kaggle_dir / "IdLookupTable.csv"),
                                             "-o", str(out), "--weights", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    assert "27124 rows for 1783 test images" in result.stdout
    assert out.read_text().splitlines()[0] == "RowId,Location"
    sub = pd.read_csv(out)
    sample = pd.read_csv(kaggle_dir / "SampleSubmission.csv")
    assert list(sub.columns) == list(sample.columns) == ["RowId", "Location"]
    assert len(sub) == len(sample) == 27124
    assert sub["RowId"].tolist() == sample["RowId"].tolist()
    assert sub["Location"].notna().all() and sub["Location"].between(0, 96).all()
    assert not list(out.parent.glob("*.tmp"))  # the atomic write leaves nothing behind


def test_each_location_is_the_asked_value_of_the_asked_image_clipped(kaggle_dir: Path) -> None:
    lookup = pd.read_csv(kaggle_dir / "IdLookupTable.csv")
    ids = np.unique(lookup["ImageId"])[::-1].copy()  # a different order from the lookup's
    rng = np.random.default_rng(1)
    pred = rng.uniform(-20, 116, (len(ids), 15, 2))  # well outside the image on both sides
    row_ids, loc = lookup_locations(ids, pred, kaggle_dir / "IdLookupTable.csv")
    where = {i: k for k, i in enumerate(ids)}
    col = {c: k for k, c in enumerate(CSV_COLUMNS)}
    want = [pred.reshape(len(ids), 30)[where[i], col[f]] for i, f in zip(lookup["ImageId"], lookup["FeatureName"])]
    assert np.array_equal(row_ids, lookup["RowId"].to_numpy())
    assert np.allclose(loc, np.clip(want, 0, 96))
    assert loc.min() == 0 and loc.max() == 96


def _lookup(tmp_path: Path, rows: list[tuple], header: str = "RowId,ImageId,FeatureName,Location") -> Path:
    path = tmp_path / "IdLookupTable.csv"
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + ",\n" for r in rows))
    return path


def test_small_lookup_written_exactly(tmp_path: Path) -> None:
    pred = np.zeros((2, 15, 2))
    pred[0, 0] = (50.25, 97.0)  # image 7: left_eye_center, y beyond the bottom edge
    pred[1, 10] = (-3.0, 12.5)  # image 9: nose_tip, x beyond the left edge
    lookup = _lookup(tmp_path, [(1, 9, "nose_tip_x"), (2, 7, "left_eye_center_y"), (3, 9, "nose_tip_y"),
                                (4, 7, "left_eye_center_x")])
    assert write_submission([7, 9], pred, lookup, tmp_path / "s.csv") == 4
    assert (tmp_path / "s.csv").read_text() == "RowId,Location\n1,0.0000\n2,96.0000\n3,12.5000\n4,50.2500\n"


def test_missing_lookup_file(tmp_path: Path) -> None:
    with pytest.raises(FkdError, match=r"IdLookupTable\.csv: no such file"):
        write_submission([1], np.zeros((1, 15, 2)), tmp_path / "IdLookupTable.csv", tmp_path / "s.csv")


def test_lookup_with_wrong_columns(tmp_path: Path) -> None:
    lookup = _lookup(tmp_path, [(1, 1, "nose_tip_x")], header="RowId,Image,Feature,Location")
    with pytest.raises(FkdError, match=r"IdLookupTable\.csv: missing the column\(s\) ImageId, FeatureName"):
        write_submission([1], np.zeros((1, 15, 2)), lookup, tmp_path / "s.csv")


def test_image_the_test_csv_lacks_is_named(tmp_path: Path) -> None:
    lookup = _lookup(tmp_path, [(1, 1, "nose_tip_x"), (2, 5, "nose_tip_x"), (3, 5, "nose_tip_y")])
    with pytest.raises(FkdError, match=r"row 3 asks for ImageId 5, which my_test\.csv does not contain \(2 lookup"):
        write_submission([1, 2], np.zeros((2, 15, 2)), lookup, tmp_path / "s.csv", source="my_test.csv")
    assert not (tmp_path / "s.csv").exists()


def test_unknown_feature_name_is_named(tmp_path: Path) -> None:
    lookup = _lookup(tmp_path, [(1, 1, "nose_tip_x"), (2, 1, "chin_x")])
    with pytest.raises(FkdError, match=r"row 3 has the unknown FeatureName 'chin_x'"):
        write_submission([1], np.zeros((1, 15, 2)), lookup, tmp_path / "s.csv")


def test_cli_reports_lookup_errors_in_one_sentence(
    kaggle_faces: dict, tiny_weights: Path, tmp_path: Path
) -> None:
    test_csv = write_test_csv(tmp_path / "test.csv", np.arange(1, 11), kaggle_faces["images"])
    lookup = _lookup(tmp_path, [(1, 11, "nose_tip_x")])
    result = CliRunner().invoke(submit_app, [str(test_csv), str(lookup), "-o", str(tmp_path / "s.csv"),
                                             "--weights", str(tiny_weights)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "ImageId 11" in result.stderr and "test.csv" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
