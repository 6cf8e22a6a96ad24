"""fkd-train --score-only: the face-score head is refitted, the keypoints stay bit for bit."""

from pathlib import Path

import torch
from typer.testing import CliRunner

from fkd.model import artifact
from fkd.train.cli import train_app


def test_score_only_refits_the_score_and_keeps_the_keypoints(pts_folder: Path, tmp_path: Path) -> None:
    common = ["--data", str(pts_folder), "--width", "8", "--batch-size", "8", "--cache-dir", str(tmp_path / "cache"),
              "--threads", "1"]
    first = CliRunner().invoke(train_app, [*common, "--output", str(tmp_path / "a"), "--epochs", "1"])
    assert first.exit_code == 0, first.output
    weights = tmp_path / "a" / "fkd.pt"
    refit = CliRunner().invoke(train_app, [*common, "--output", str(tmp_path / "b"), "--epochs", "2",
                                           "--init", str(weights), "--score-only", "--lr", "0.01"])
    assert refit.exit_code == 0, refit.output
    before = torch.jit.load(str(weights)).state_dict()
    after = torch.jit.load(str(tmp_path / "b" / "fkd.pt")).state_dict()
    assert before.keys() == after.keys()
    frozen = [k for k in before if not k.startswith("score.")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # batch-norm statistics too
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("score."))
    # the last epoch ships (validation NME is the same at every epoch, so it cannot choose)
    assert artifact.read_metadata(tmp_path / "b" / "fkd.pt")["training"]["best_epoch"] == 2
    assert artifact.read_metadata(tmp_path / "b" / "fkd.pt")["training"]["score_only"] is True


def test_score_only_without_init_is_refused_before_anything_is_written(pts_folder: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(train_app, ["--data", str(pts_folder), "--output", str(tmp_path / "run"),
                                            "--score-only"])
    assert result.exit_code != 0
    assert "--score-only" in result.output and "--init" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
