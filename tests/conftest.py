"""Fixtures shared by the test files: where ../shared is, and small real inputs built from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared beside the checkout; tests that need it skip, saying why, where it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"needs the shared data folder {SHARED} (present in CI), which is missing here")
    return SHARED


@pytest.fixture(scope="session")
def pts_folder(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small 300-W style folder: the first 16 real AFW photos with their .pts files."""
    out = tmp_path_factory.mktemp("afw16")
    for pts in sorted((shared / "data/300w/afw").glob("*.pts"))[:16]:
        shutil.copy(pts, out)
        shutil.copy(pts.with_suffix(".jpg"), out)
    return out


# -- Kaggle-format CSVs and a valid weights file (fkd-eval / fkd-submit tests) ---------------------------
KAGGLE_FOUR_POINTS = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip")


@pytest.fixture
def kaggle_faces() -> dict:
    """Ten faces as Kaggle ships them: 6 with all 15 points, 4 with only the 4-point subset."""
    import numpy as np

    from fkd.model.schema import INDEX, KAGGLE_MEAN

    rng = np.random.default_rng(7)
    points = (KAGGLE_MEAN + rng.normal(0, 2, (10, *KAGGLE_MEAN.shape))).round(4)
    mask = np.ones((10, len(KAGGLE_MEAN)), bool)
    mask[6:] = False
    mask[6:, [INDEX[n] for n in KAGGLE_FOUR_POINTS]] = True
    return {"images": rng.integers(0, 256, (10, 96, 96), dtype=np.uint8), "points": points, "mask": mask}


@pytest.fixture
def kaggle_training_csv(kaggle_faces: dict, tmp_path: Path) -> Path:
    """training.csv in Kaggle's exact format (30 columns, Image, empty cells for missing labels)."""
    from fkd.train.data.kaggle import write_training_csv

    return write_training_csv(tmp_path / "training.csv", **kaggle_faces)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid fkd weights file (untrained width-8 net) for CLI tests that need any working model."""
    import torch

    from fkd.model.net import KeypointNet
    from fkd.model.torch_weights import export

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    # with its ONNX twin, as fkd-train writes weights: the commands run it without a fallback note
    export(KeypointNet(width=8), path, {"training": {"data": ["none: untrained, for tests"]}})
    return path


@pytest.fixture(scope="session")
def tiny_weights68(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 68-point fkd weights file (untrained width-8 net, whole-face crop), with its ONNX
    twin: every path that takes either kind of weights runs on it until real ones are shipped."""
    import torch

    from fkd.model.net import KeypointNet
    from fkd.model.torch_weights import export

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights68") / "tiny68.pt"
    export(KeypointNet(width=8, keypoints=68), path, {"training": {"data": ["none: untrained, for tests"]}})
    return path


@pytest.fixture(scope="session")
def fitted_weights68(pts_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 68-point weights file fitted for 40 steps to 16 real AFW faces (about 25 s on one thread):
    rough, but it answers with a face-shaped set of points, which the pipelines need to frame
    their next crop (an untrained network puts all 68 on one spot)."""
    import numpy as np
    import torch

    from fkd.model.net import KeypointNet
    from fkd.model.torch_weights import export
    from fkd.train.data.pts import load_pts_folder

    faces = load_pts_folder(pts_folder, None, workers=1, points=68)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = KeypointNet(width=8, keypoints=68)
    x = torch.from_numpy(faces.crops).float()[:, None]
    y = torch.from_numpy(np.asarray(faces.points, np.float32))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(40):
        loss = (net(x)[0] - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("weights68") / "fitted68.pt"
    export(net, path, {"training": {"data": ["16 AFW faces, 40 steps: for tests"]}})
    return path


# -- the live app: fkd-live and fkd-predict -------------------------------------------------------------
@pytest.fixture(scope="session")
def shipped_weights() -> Path:
    """The shipped model, which the live-app tests run on: a fresh clone must work with no training step."""
    from fkd.model.metadata import default_weights

    return default_weights()


@pytest.fixture(scope="module")
def restore_threads():
    """fkd-live/fkd-predict run in-process set torch's and OpenCV's thread counts; give them back after."""
    import cv2
    import torch

    saved = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(saved[0])
    cv2.setNumThreads(saved[1])
