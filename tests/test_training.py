"""The network learns, exports to TorchScript that a fresh process reproduces, and runs resume."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fkd.model import artifact, torch_weights
from fkd.model.net import KeypointNet
from fkd.train.cli import train_app
from fkd.train.losses import masked_loss


def test_tiny_model_overfits_a_tiny_batch() -> None:
    torch.manual_seed(0)
    model = KeypointNet(width=8)
    x = torch.rand(8, 1, 96, 96) * 255
    y = torch.rand(8, 15, 2) * 60 + 18
    mask = torch.rand(8, 15) > 0.3
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        loss = masked_loss(model(x)[0], y, mask, "smoothl1")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, f"loss only went from {losses[0]:.2f} to {losses[-1]:.2f}"


def test_masked_loss_ignores_unlabelled_points() -> None:
    pred, target = torch.zeros(2, 15, 2), torch.zeros(2, 15, 2)
    mask = torch.zeros(2, 15, dtype=torch.bool)
    mask[:, :4] = True
    pred[:, 4:] = 1000.0  # wildly wrong where there is no label
    for kind in ("wing", "smoothl1", "mse"):
        assert masked_loss(pred, target, mask, kind).item() == 0.0


def test_torchscript_export_matches_eager_in_a_fresh_process(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = KeypointNet(width=8).eval()
    x = np.random.default_rng(0).integers(0, 255, (3, 96, 96)).astype(np.uint8)
    with torch.no_grad():
        eager = model(torch.from_numpy(x.astype(np.float32))[:, None])[0].numpy()
    path = tmp_path / "w.pt"
    torch_weights.export(model, path, {"note": "test"})
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np; from fkd.model.artifact import Predictor;"
        "x = np.load(sys.argv[1]); out = {}\n"
        "for rt in ('torchscript', 'onnx'): out[rt] = Predictor(sys.argv[2], runtime=rt)(x)\n"
        "np.savez(sys.argv[3], **out)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"), str(path), str(tmp_path / "y.npz")],
                   check=True)
    got = np.load(tmp_path / "y.npz")
    assert np.abs(got["torchscript"] - eager).max() < 1e-3
    assert np.abs(got["onnx"] - eager).max() < 1e-3
    meta = artifact.read_metadata(path)
    assert meta["keypoints"][0] == "left_eye_center" and meta["input"]["size"] == [96, 96]
    assert meta["crop_convention"]["side"] > 0 and meta["note"] == "test"


def test_train_then_resume_continues_from_the_next_epoch(pts_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--data", str(pts_folder), "--output", str(run), "--width", "8", "--batch-size", "8",
            "--cache-dir", str(tmp_path / "cache"), "--threads", "1"]
    first = CliRunner().invoke(train_app, [*args, "--epochs", "2"])
    assert first.exit_code == 0, first.output
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2]
    assert torch.load(run / "last.pt", weights_only=False)["epoch"] == 2
    second = CliRunner().invoke(train_app, ["--output", str(run), "--resume", "--epochs", "3"])
    assert second.exit_code == 0, second.output
    said = " ".join(second.output.split())  # rich wraps lines to the terminal width
    assert "resuming" in said and "after epoch 2 of 3" in said
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2, 3]
    for name in ("fkd.pt", "fkd.onnx", "learning_curve.png", "val_predictions.png", "val_ids.txt", "metrics.json"):
        assert (run / name).is_file(), name
    meta = artifact.read_metadata(run / "fkd.pt")
    assert meta["training"]["epochs"] == 3
    # the face-score head trained on stand-in negatives; its threshold and picture come with the weights
    assert 0 < meta["face_score"]["threshold"] < 1 and (run / "face_score.png").is_file()
    assert (run / "test_ids.txt").is_file()
    # the labels' left-right offset, measured on the training faces, travels with the weights
    offset = meta["label_offset"]
    assert len(offset["x_px"]) == 15 and offset["faces"] > 0
    assert artifact.Predictor(run / "fkd.pt").x_offset.tolist() == pytest.approx(offset["x_px"], abs=1e-6)
    # the ONNX twin (int8 if it kept accuracy, else float32) is tagged for this fkd.pt and used
    assert "int8 ONNX twin" in said
    assert artifact.Predictor(run / "fkd.pt").runtime == "onnx"
