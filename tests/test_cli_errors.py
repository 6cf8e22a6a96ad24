"""Bad input to fkd-train, fkd-eval and fkd-submit: one clear sentence, exit code != 0, no traceback."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from cli_checks import assert_one_sentence
from typer.testing import CliRunner

from fkd.train.cli import eval_app, submit_app, train_app


def fkd_eval(*args: object):
    return CliRunner().invoke(eval_app, [str(a) for a in args])


def copy_pairs(src: Path, dst: Path, n: int) -> Path:
    dst.mkdir()
    for pts in sorted(src.glob("*.pts"))[:n]:
        shutil.copy(pts, dst)
        shutil.copy(pts.with_suffix(".jpg"), dst)
    return dst


# -- missing files ------------------------------------------------------------------------------------
def test_missing_data(tiny_weights: Path, tmp_path: Path) -> None:
    assert_one_sentence(fkd_eval(tmp_path / "training.csv", "--weights", tiny_weights),
                        "training.csv: no such file or folder")


def test_missing_data_for_training(tmp_path: Path) -> None:
    result = CliRunner().invoke(train_app, ["--data", str(tmp_path / "faces"), "--output", str(tmp_path / "run")])
    assert_one_sentence(result, "faces: no such file or folder")


def test_missing_test_csv_and_lookup(tiny_weights: Path, tmp_path: Path, kaggle_training_csv: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(submit_app, [str(tmp_path / "test.csv"), str(tmp_path / "IdLookupTable.csv"),
                                        "--weights", str(tiny_weights), "-o", str(tmp_path / "s.csv")])
    assert_one_sentence(result, "test.csv: no such file")


def test_missing_weights(kaggle_training_csv: Path, tmp_path: Path) -> None:
    assert_one_sentence(fkd_eval(kaggle_training_csv, "--weights", tmp_path / "gone.pt"),
                        "gone.pt does not exist")


# -- CSV content ---------------------------------------------------------------------------------------
def test_csv_without_expected_columns(kaggle_training_csv: Path, tiny_weights: Path) -> None:
    df = pd.read_csv(kaggle_training_csv, dtype={"Image": str})
    df.rename(columns={"Image": "Pixels"}).to_csv(kaggle_training_csv, index=False)
    assert_one_sentence(fkd_eval(kaggle_training_csv, "--weights", tiny_weights),
                        "training.csv: missing the column(s) Image")


def test_test_csv_without_expected_columns(kaggle_training_csv: Path, tiny_weights: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(submit_app, [str(kaggle_training_csv), str(kaggle_training_csv),
                                             "--weights", str(tiny_weights), "-o", str(tmp_path / "s.csv")])
    assert_one_sentence(result, "training.csv: missing the column(s) ImageId")


@pytest.mark.parametrize(("cell", "why"), [("1 2 3", "has 3 pixel values, expected 9216"),
                                           ("12 " * 9215 + "x7", "not a whole number")], ids=["count", "non-number"])
def test_pixel_string_names_the_row(kaggle_training_csv: Path, tiny_weights: Path, cell: str, why: str) -> None:
    df = pd.read_csv(kaggle_training_csv, dtype={"Image": str})
    df.loc[7, "Image"] = cell
    df.to_csv(kaggle_training_csv, index=False)
    assert_one_sentence(fkd_eval(kaggle_training_csv, "--weights", tiny_weights), "training.csv: row 9", why)


def test_not_a_csv(tmp_path: Path, tiny_weights: Path) -> None:
    notes = tmp_path / "faces.txt"
    notes.write_text("hello\n")
    assert_one_sentence(fkd_eval(notes, "--weights", tiny_weights), "faces.txt: expected a Kaggle-format .csv")


# -- .pts folders --------------------------------------------------------------------------------------
def test_pts_without_68_points_drops_the_face_and_names_the_file(pts_folder: Path, tiny_weights: Path,
                                                                 tmp_path: Path) -> None:
    folder = copy_pairs(pts_folder, tmp_path / "faces", 2)
    bad = sorted(folder.glob("*.pts"))[1]
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join(lines[:3] + lines[3:8] + ["}"]) + "\n")  # 5 points
    result = fkd_eval(folder, "--weights", tiny_weights, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output  # a broken label costs its face, not the run (issue 9)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "dropped 1 face(s)" in warnings[0] and bad.name in warnings[0], result.stderr


def test_unreadable_image_is_skipped_and_counted(pts_folder: Path, tiny_weights: Path, tmp_path: Path) -> None:
    folder = copy_pairs(pts_folder, tmp_path / "faces", 3)
    shutil.copy(next(folder.glob("*.pts")), folder / "broken.pts")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    result = fkd_eval(folder, "--weights", tiny_weights, "--cache-dir", tmp_path / "cache", "--export", "-")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["faces"] == 3 and report["unreadable"] == 1
    table = fkd_eval(folder, "--weights", tiny_weights, "--cache-dir", tmp_path / "cache")  # now from the cache
    assert table.exit_code == 0 and "1 unreadable image skipped" in table.stdout


def test_no_usable_image_is_an_error(pts_folder: Path, tiny_weights: Path, tmp_path: Path) -> None:
    folder = copy_pairs(pts_folder, tmp_path / "faces", 2)
    for jpg in folder.glob("*.jpg"):
        jpg.write_bytes(b"\xff\xd8 truncated")
    assert_one_sentence(fkd_eval(folder, "--weights", tiny_weights, "--cache-dir", tmp_path / "cache"),
                        "faces: none of the 2 images could be read")


def test_folder_without_pts_files(tmp_path: Path, tiny_weights: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_sentence(fkd_eval(tmp_path / "empty", "--weights", tiny_weights), "no image with a .pts file")


# -- weights -------------------------------------------------------------------------------------------
def test_corrupt_weights(kaggle_training_csv: Path, tiny_weights: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(tiny_weights.read_bytes()[:5000])  # a download cut short
    assert_one_sentence(fkd_eval(kaggle_training_csv, "--weights", corrupt),
                        "corrupt.pt is not a TorchScript archive")


def test_foreign_torchscript_without_fkd_metadata(kaggle_training_csv: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "resnet.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), str(foreign))
    assert_one_sentence(fkd_eval(kaggle_training_csv, "--weights", foreign), "carries no fkd metadata")
    result = CliRunner().invoke(submit_app, [str(kaggle_training_csv), str(kaggle_training_csv),
                                             "--weights", str(foreign), "-o", str(tmp_path / "s.csv")])
    assert_one_sentence(result, "carries no fkd metadata")


# -- fkd-train --resume ----------------------------------------------------------------------------------
def test_resume_without_checkpoint(tmp_path: Path) -> None:
    empty = tmp_path / "run"
    empty.mkdir()
    result = CliRunner().invoke(train_app, ["--resume", "--output", str(empty)])
    assert_one_sentence(result, "--resume: there is no checkpoint", "last.pt")


# -- the installed console script, as a user runs it ----------------------------------------------------
def test_console_script_prints_one_line_and_no_traceback(tmp_path: Path, tiny_weights: Path) -> None:
    script = Path(sys.executable).parent / "fkd-eval"
    if not script.exists():
        pytest.skip(f"the fkd-eval console script is not installed beside {sys.executable}")
    proc = subprocess.run([str(script), str(tmp_path / "missing.csv"), "--weights", str(tiny_weights)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1  # a file at fault, not the command line (fkd.model.errors)
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {tmp_path / 'missing.csv'}: no such file or folder."
