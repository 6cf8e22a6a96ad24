"""Old flag spellings keep working for one release, each with a one-line notice on stderr, and
fkd-eval's --export writes the JSON object to a file or to stdout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from cli_checks import assert_one_sentence
from typer.testing import CliRunner

NOTICE = "is deprecated and will be removed in the next release"


def notices(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if NOTICE in line]


def test_submit_out_still_writes_with_a_notice(kaggle_faces: dict, tiny_weights: Path, tmp_path: Path) -> None:
    from fkd.train.cli import submit_app
    from fkd.train.data.kaggle import write_test_csv

    test_csv = write_test_csv(tmp_path / "test.csv", np.arange(1, 11), kaggle_faces["images"])
    lookup = tmp_path / "IdLookupTable.csv"
    lookup.write_text("RowId,ImageId,FeatureName,Location\n1,1,nose_tip_x,\n2,3,nose_tip_y,\n")
    args = [str(test_csv), str(lookup), "--weights", str(tiny_weights)]
    old = CliRunner().invoke(submit_app, [*args, "--out", str(tmp_path / "old.csv")])
    assert old.exit_code == 0, old.output
    assert notices(old.stderr) == ["warning: --out is deprecated and will be removed in the next release; "
                                   "use --output."]
    new = CliRunner().invoke(submit_app, [*args, "-o", str(tmp_path / "new.csv")])
    assert new.exit_code == 0 and notices(new.stderr) == []
    assert (tmp_path / "old.csv").read_text() == (tmp_path / "new.csv").read_text()


def test_old_and_new_name_together_is_a_usage_error(kaggle_faces: dict, tiny_weights: Path, tmp_path: Path) -> None:
    from fkd.train.cli import submit_app

    result = CliRunner().invoke(submit_app, ["test.csv", "lookup.csv", "--out", str(tmp_path / "a.csv"),
                                             "--output", str(tmp_path / "b.csv")])
    assert_one_sentence(result, "--output", "--out", code=2)


def test_eval_export_to_file_and_stdout_and_old_json(kaggle_training_csv: Path, tiny_weights: Path,
                                                     tmp_path: Path) -> None:
    from fkd.train.cli import eval_app

    def run(*flags: str):
        result = CliRunner().invoke(eval_app, [str(kaggle_training_csv), "--weights", str(tiny_weights), *flags])
        assert result.exit_code == 0, result.output
        return result

    to_stdout = run("--export", "-")
    to_file = run("--export", str(tmp_path / "metrics.json"))
    old = run("--json")
    report = json.loads(to_stdout.stdout)
    assert report["faces"] == 10
    assert json.loads((tmp_path / "metrics.json").read_text()) == report and to_file.stdout == ""
    assert json.loads(old.stdout) == report and len(notices(old.stderr)) == 1 and notices(to_stdout.stderr) == []


def test_predict_json_still_exports_with_a_notice(shared: Path, shipped_weights: Path, tmp_path: Path,
                                                  restore_threads) -> None:
    from fkd.realtime.cli import predict_app

    photo = shared / "data/300w/afw/1051618982_1.jpg"
    result = CliRunner().invoke(predict_app, [str(photo), "--weights", str(shipped_weights),
                                              "--json", str(tmp_path / "faces.jsonl")])
    assert result.exit_code == 0, result.output
    assert notices(result.stderr) == ["warning: --json is deprecated and will be removed in the next release; "
                                      "use --export."]
    assert len(json.loads((tmp_path / "faces.jsonl").read_text())["faces"]) == 1


def test_train_out_still_names_the_run_folder(tmp_path: Path) -> None:
    """fkd-train --out reaches the run folder (here: --resume on an empty one, refused naming it)."""
    from fkd.train.cli import train_app

    empty = tmp_path / "run"
    empty.mkdir()
    result = CliRunner().invoke(train_app, ["--resume", "--out", str(empty)])
    assert result.exit_code == 1 and str(empty) in result.stderr and len(notices(result.stderr)) == 1
