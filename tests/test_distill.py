"""Distillation (``fkd-train --teacher``): the teacher's target is the flip-averaged answer fkd
itself gives, and it teaches points that carry no label."""

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fkd.model.artifact import Predictor
from fkd.model.net import KeypointNet
from fkd.train.cli import train_app
from fkd.train.config import TrainConfig, upgraded_config
from fkd.train.data.load import load_sources
from fkd.train.loop import train_step
from fkd.train.network import TrainView
from fkd.train.teachers.distill import load_teacher, teacher_keypoints


def test_teacher_target_is_what_fkd_predicts_with_flip(pts_folder: Path, shipped_weights: Path) -> None:
    crops = load_sources([pts_folder], None).crops
    teacher = load_teacher(shipped_weights, torch.device("cpu"))
    taught = teacher_keypoints([teacher], torch.from_numpy(crops).float()[:, None]).numpy()
    # the network's own flip-averaged answer: the label offset is for reporting, not for teaching
    want = Predictor(shipped_weights, runtime="torchscript", flip=True).without_label_offset()(crops)
    assert np.allclose(taught, want, atol=1e-3)


def test_several_teachers_teach_their_mean(pts_folder: Path, shipped_weights: Path, tiny_weights: Path) -> None:
    x = torch.from_numpy(load_sources([pts_folder], None).crops[:6]).float()[:, None]
    shipped, tiny = (load_teacher(w, torch.device("cpu")) for w in (shipped_weights, tiny_weights))
    alone = [teacher_keypoints([t], x) for t in (shipped, tiny)]
    assert not torch.allclose(alone[0], alone[1], atol=0.5)  # two different answers, so the mean is a real test
    assert torch.allclose(teacher_keypoints([shipped, tiny], x), (alone[0] + alone[1]) / 2, atol=1e-4)


def test_a_run_stored_with_one_teacher_still_resumes() -> None:
    """Configs written before --teacher could be repeated hold one path (or None) as ``teacher``."""
    assert TrainConfig(**upgraded_config({"data": [], "teacher": "a.pt"})).teachers == ["a.pt"]
    assert TrainConfig(**upgraded_config({"data": [], "teacher": None})).teachers == []


def test_the_teacher_teaches_points_that_have_no_label(pts_folder: Path, shipped_weights: Path) -> None:
    """With every label masked off the point loss is zero; only the teacher moves the keypoints."""
    torch.manual_seed(0)
    teacher = load_teacher(shipped_weights, torch.device("cpu"))
    student = KeypointNet(width=8)
    x = torch.from_numpy(load_sources([pts_folder], None).crops[:8]).float()[:, None]
    batch = (x, torch.zeros(8, 15, 2), torch.zeros(8, 15, dtype=torch.bool), torch.ones(8))
    target = teacher_keypoints([teacher], x)

    def gap() -> float:
        student.eval()
        with torch.no_grad():
            return float((student(x)[0] - target).norm(dim=-1).mean())

    cfg = TrainConfig(data=[], negatives=0.0, teachers=["given"], loss="smoothl1")
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    before = gap()
    for _ in range(40):
        student.train()
        train_step(TrainView(student), student, opt, sched, None, batch, cfg, None, [teacher])
    assert gap() < 0.5 * before
    losses = train_step(TrainView(student), student, opt, sched, None, batch, cfg, None, [])
    assert losses[1].item() == 0.0  # without the teacher nothing is labelled, nothing is learnt


@pytest.mark.parametrize("make, says", [
    (lambda d: d / "missing.pt", "no such file"),
    (lambda d: (d / "notes.pt").write_text("not weights") and d / "notes.pt", "not fkd weights"),
])
def test_a_bad_teacher_is_one_sentence(pts_folder: Path, tmp_path: Path, make, says: str) -> None:
    teacher = make(tmp_path)
    result = CliRunner().invoke(train_app, ["--data", str(pts_folder), "--output", str(tmp_path / "run"),
                                            "--epochs", "1", "--teacher", str(teacher), "--cache-dir",
                                            str(tmp_path / "cache")])
    assert result.exit_code == 1, result.output
    assert f"--teacher {teacher}" in result.output and says in result.output
    assert "Traceback" not in result.output


def test_the_bad_one_of_several_teachers_is_named(pts_folder: Path, tmp_path: Path, shipped_weights: Path) -> None:
    missing = tmp_path / "missing.pt"
    result = CliRunner().invoke(train_app, ["--data", str(pts_folder), "--output", str(tmp_path / "run"),
                                            "--epochs", "1", "--teacher", str(shipped_weights), "--teacher",
                                            str(missing), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 1, result.output
    assert f"--teacher {missing}" in result.output and "no such file" in result.output
    assert not (tmp_path / "run").exists()
