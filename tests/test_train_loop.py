"""The loop's pieces: negatives add nothing to the keypoint loss, the score head learns, EMA,
warm start, bf16 autocast and torch.compile."""

import shutil
from pathlib import Path

import pytest
import torch

from fkd.model.net import KeypointNet
from fkd.model.torch_weights import export
from fkd.train.config import TrainConfig
from fkd.train.device import compile_view
from fkd.train.ema import EMA
from fkd.train.losses import heatmap_loss, masked_loss, score_loss
from fkd.train.network import TrainView, load_matching
from fkd.train.schedule import lr_by_progress, out_of_time


def _batch(n_faces: int = 6, n_neg: int = 4) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n_faces + n_neg, 1, 96, 96, generator=g) * 255
    y = torch.rand(n_faces + n_neg, 15, 2, generator=g) * 60 + 18
    m = torch.ones(n_faces + n_neg, 15, dtype=torch.bool)
    m[n_faces:] = False  # negatives: no keypoint is labelled
    y[n_faces:] = 0
    is_face = torch.cat([torch.ones(n_faces), torch.zeros(n_neg)])
    return x, y, m, is_face


def test_keypoint_loss_is_masked_off_on_negatives() -> None:
    _x, y, m, _ = _batch()
    pred = y.clone()
    pred[6:] = 1e4  # any keypoints at all on the negatives ...
    assert masked_loss(pred, y, m, "smoothl1").item() == 0.0  # ... cost nothing
    assert heatmap_loss(torch.zeros(10, 15, 24, 24), torch.tensor(1.0), KeypointNet().centres, y, m).item() > 0
    grads = torch.zeros(10, 15, 24, 24, requires_grad=True)
    heatmap_loss(grads, torch.tensor(1.0), KeypointNet().centres, y, m).backward()
    assert grads.grad[6:].abs().sum() == 0 and grads.grad[:6].abs().sum() > 0


def test_score_head_learns_faces_from_negatives() -> None:
    torch.manual_seed(0)
    model = KeypointNet(width=8)
    view = TrainView(model)
    x, y, m, is_face = _batch()
    x[6:] = 128.0  # flat patches
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        _, kp, logit, _ = view(x)
        loss = masked_loss(kp, y, m, "smoothl1") + score_loss(logit, is_face)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        score = torch.sigmoid(model(x)[1])
    assert score[:6].min() > 0.9 and score[6:].max() < 0.1


def test_ema_follows_the_weights_slowly() -> None:
    model = KeypointNet(width=8)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    for _ in range(3):
        ema.update(model)
    a, b = next(ema.model.parameters()), next(model.parameters())
    assert 0 < (b - a).abs().mean() < 1.0


def test_warm_start_copies_every_matching_tensor(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = KeypointNet(width=8).eval()
    export(source, tmp_path / "w.pt", {}, onnx=False)
    target = KeypointNet(width=8)
    got, of = load_matching(target, tmp_path / "w.pt")
    assert got == of
    assert torch.equal(target.stem[0][0].weight, source.stem[0][0].weight)
    assert load_matching(KeypointNet(width=16), tmp_path / "w.pt")[0] < of  # other shapes are skipped


def test_bf16_autocast_training_step_runs() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = KeypointNet(width=8).to(device)
    view = TrainView(model)
    x, y, m, is_face = (t.to(device) for t in _batch())
    with torch.autocast(device.type, dtype=torch.bfloat16):
        h, kp, logit, _ = view(x)
    assert h.dtype == torch.bfloat16 and kp.dtype == torch.float32  # soft-argmax runs in float32
    loss = masked_loss(kp, y, m, "smoothl1") + score_loss(logit, is_face)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters() if p.requires_grad)


COMPILE_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.skipif(COMPILE_DEVICE == "cpu" and not (shutil.which("g++") or shutil.which("c++")),
                    reason="no CUDA GPU, and torch.compile's CPU backend needs a C++ compiler, which is missing")
def test_compiled_training_step_matches_eager_and_trains() -> None:
    """The --compile path end to end, backward included: on the CPU that is where inductor's own
    channels_last layout crashed the process before ``compile_view`` turned it off."""
    device = torch.device(COMPILE_DEVICE)
    torch.manual_seed(0)
    model = KeypointNet(width=8).to(device).train()
    x = _batch()[0].to(device)
    eager = TrainView(model)(x)[1].detach()  # training mode: batch statistics, so the same both ways
    kp = compile_view(TrainView(model), device)(x)[1]
    assert torch.allclose(eager, kp, atol=1e-3)
    kp.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)


def test_time_budget_ends_the_run_and_its_schedule_in_time() -> None:
    cfg = TrainConfig(data=[], epochs=100, time_budget=1000.0)
    history = [{"epoch": e, "seconds": 20.0 * e} for e in (1, 2, 3)]
    assert not out_of_time(history, cfg)
    long = [{"epoch": e, "seconds": 20.0 * e} for e in range(1, 50)]  # 980 s spent, 20 s epochs
    assert not out_of_time(long, cfg)  # 20 s left: the next epoch still fits
    assert out_of_time([*long, {"epoch": 50, "seconds": 995.0}], cfg)  # 5 s left: less than half an epoch
    cfg.time_budget = None
    assert not out_of_time([{"epoch": 50, "seconds": 1e9}], cfg)
    # the same warm-up and cosine as by steps, reaching zero at the end
    assert lr_by_progress(0.0, 0.03) > 0 and lr_by_progress(0.03, 0.03) == 1.0
    assert lr_by_progress(1.0, 0.03) == 0.0 and lr_by_progress(2.0, 0.03) == 0.0
    assert abs(lr_by_progress(0.515, 0.03) - 0.5) < 1e-6
