"""Inference without torch (issue 11): fkd-live, fkd-predict and the Predictor run on the ONNX twin
and never import torch; export handles networks with and without a face-score head; a light
install (no torch) in a fresh venv predicts, and its training commands name the extra they need.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from fkd.model import artifact, torch_weights
from fkd.model.errors import FkdError

REPO = Path(__file__).resolve().parents[1]

#: Runs a console script in-process (by its entry point, as pip's launcher does), then reports on
#: stderr which heavy modules the whole run imported, from an atexit hook (typer ends in SystemExit).
RUN_ENTRY_POINT = """
import atexit, sys
from importlib.metadata import entry_points
atexit.register(lambda: print("imported:", " ".join(m for m in ("torch", "onnxruntime", "pandas")
                                                    if m in sys.modules), file=sys.stderr))
(script,) = [e for e in entry_points(group="console_scripts") if e.name == sys.argv[1]]
sys.argv = sys.argv[1:]
script.load()()
"""


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN_ENTRY_POINT, *args], capture_output=True, text=True,
                          timeout=300)


def imported(done: subprocess.CompletedProcess) -> set[str]:
    """The heavy modules the subprocess had imported by its exit (the last 'imported:' line)."""
    line = [x for x in done.stderr.splitlines() if x.startswith("imported:")][-1]
    return set(line.split()[1:])


@pytest.fixture(scope="module")
def photo(shared: Path) -> Path:
    return min((shared / "data/300w/afw").glob("*.jpg"))


@pytest.fixture(scope="module")
def clip(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 20 frames of the shared talking-head video, as a short user clip."""
    out = tmp_path_factory.mktemp("clip") / "clip20.mp4"
    cap = cv2.VideoCapture(str(shared / "video/talking_head_512.mp4"))
    writer = None
    for _ in range(20):
        ok, frame = cap.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, frame.shape[1::-1])
        writer.write(frame)
    cap.release()
    assert writer is not None
    writer.release()
    return out


def test_fkd_predict_on_a_photo_never_imports_torch(photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces.jsonl"
    done = run_script("fkd-predict", str(photo), "--export", str(out))
    assert done.returncode == 0, done.stderr
    assert imported(done) == {"onnxruntime"}, done.stderr
    faces = json.loads(out.read_text().splitlines()[0])["faces"]
    assert len(faces) == 1 and len(faces[0]["keypoints"]) == 15


def test_fkd_live_on_a_clip_never_imports_torch(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames.jsonl"
    done = run_script("fkd-live", "--video", str(clip), "--headless", "--export", str(out))
    assert done.returncode == 0, done.stderr
    assert imported(done) == {"onnxruntime"}, done.stderr
    frames = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(frames) == 20 and sum(len(f["faces"]) for f in frames) >= 15


@pytest.mark.parametrize("script", ["fkd-live", "fkd-predict", "fkd-train", "fkd-eval", "fkd-submit"])
def test_help_imports_neither_torch_nor_onnxruntime(script: str) -> None:
    done = run_script(script, "--help")
    assert done.returncode == 0, done.stderr
    assert imported(done) == set(), done.stderr


def test_predictor_from_python_never_imports_torch(photo: Path) -> None:
    """The Python API on a real face crop: keypoints, scores and metadata, all without torch."""
    code = (
        "import sys, cv2, numpy as np\n"
        "from fkd.model.artifact import Predictor, read_metadata\n"
        "from fkd.model.crop import crop_face\n"
        "from fkd.model.detect import FaceDetector\n"
        "grey = cv2.imread(sys.argv[1], cv2.IMREAD_GRAYSCALE)\n"
        "face = FaceDetector().detect(grey, min_face=40)[0]\n"
        "crop = crop_face(grey, face.square)\n"
        "p = Predictor()\n"
        "points, scores = p.run(crop[None])\n"
        "assert np.array_equal(points, p(crop[None]))\n"
        "meta = read_metadata(p.path)\n"
        "print(p.runtime, p.has_score, p.threshold, points.shape, scores.dtype, float(scores[0]),"
        " len(meta['keypoints']), 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(photo)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    runtime, has_score, threshold, *rest = done.stdout.split()
    assert runtime == "onnx" and 0 < float(threshold) < 1
    assert rest[-1] == "False", "torch was imported"
    assert rest[-2] == "15"
    if has_score == "False":  # the weights shipped before the face score: every crop scores 1
        assert "1.0" in rest


def test_python_api_never_imports_torch(photo: Path, clip: Path) -> None:
    """fkd.Landmarker (realtime/api.py), the documented Python entry point, on a real photo and a real clip."""
    if not (REPO / "realtime/api.py").is_file():
        pytest.skip("realtime/api.py (the Python API) is not in this checkout yet")
    code = (
        "import sys, cv2, fkd\n"
        "marker = fkd.Landmarker()\n"
        "faces = marker.landmarks(cv2.imread(sys.argv[1]))\n"
        "cap = cv2.VideoCapture(sys.argv[2]); tracked = 0\n"
        "with marker.tracker(fps=25) as tracker:\n"
        "    ok, frame = cap.read()\n"
        "    while ok:\n"
        "        tracked += len(tracker.update(frame)); ok, frame = cap.read()\n"
        "print(len(faces), faces[0].keypoints.shape, tracked, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(photo), str(clip)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    found, shape_a, shape_b, tracked, torch_imported = done.stdout.split()
    assert found == "1" and (shape_a + shape_b) == "(15,2)" and int(tracked) >= 15
    assert torch_imported == "False", "the Python API imported torch"


# -- export and both runtimes, for networks with and without a score head ------------------------------
class TinyKeypoints(nn.Module):
    """A KeypointNet-like toy: 96x96 grey levels -> (N, 15, 2) keypoints, untrained."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 4, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.points = nn.Linear(64, 30)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.points(self.features((x - 127.5) / 64.0)).reshape(-1, 15, 2) + 48.0


class TinyWithScore(TinyKeypoints):
    """The same toy with a face-logit head: forward returns (keypoints, face_logit) like KeypointNet."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(64, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        f = self.features((x - 127.5) / 64.0)
        return self.points(f).reshape(-1, 15, 2) + 48.0, self.score(f).squeeze(1)


@pytest.mark.parametrize("net", [TinyKeypoints, TinyWithScore])
def test_both_runtimes_run_weights_with_and_without_a_score_head(net: type[nn.Module], tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = net().eval()
    path = tmp_path / "w.pt"
    torch_weights.export(model, path, {"face_score": {"threshold": 0.7}} if net is TinyWithScore else {})
    crops = np.random.default_rng(0).integers(0, 256, (3, 96, 96)).astype(np.uint8)
    with torch.no_grad():
        eager = model(torch.from_numpy(crops.astype(np.float32))[:, None])
    want_points = (eager[0] if isinstance(eager, tuple) else eager).numpy()
    want_scores = torch.sigmoid(eager[1]).numpy() if isinstance(eager, tuple) else np.ones(3, np.float32)
    for runtime in ("onnx", "torchscript"):
        p = artifact.Predictor(path, runtime=runtime)
        points, scores = p.run(crops)
        assert p.runtime == runtime and p.has_score == (net is TinyWithScore)
        assert points.dtype == scores.dtype == np.float32 and scores.shape == (3,)
        np.testing.assert_allclose(points, want_points, atol=1e-3)
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)
        assert p.threshold == (0.7 if net is TinyWithScore else 0.5)
        empty_points, empty_scores = p.run(np.zeros((0, 96, 96), np.uint8))
        assert empty_points.shape == (0, 15, 2) and empty_scores.shape == (0,)
    import onnxruntime as ort

    outputs = [o.name for o in ort.InferenceSession(str(path.with_suffix(".onnx"))).get_outputs()]
    assert outputs == (["keypoints", "face_logit"] if net is TinyWithScore else ["keypoints"])
    assert artifact.read_metadata(path) == torch_weights.read_metadata(path)  # twin and TorchScript agree


def test_shipped_weights_run_on_both_runtimes(shipped_weights: Path) -> None:
    crops = np.full((2, 96, 96), 128, np.uint8)
    for runtime in ("onnx", "torchscript"):
        p = artifact.Predictor(shipped_weights, runtime=runtime)
        points, scores = p.run(crops)
        assert points.shape == (2, 15, 2) and np.isfinite(points).all()
        assert ((scores > 0) & (scores <= 1)).all()
        if not p.has_score:
            assert (scores == 1).all()


@pytest.fixture
def shipped_copy(shipped_weights: Path, tmp_path: Path) -> Path:
    path = tmp_path / "fkd.pt"
    shutil.copy(shipped_weights, path)
    return path


def test_missing_twin_falls_back_to_torchscript_with_one_sentence(shipped_copy: Path, capfd) -> None:
    p = artifact.Predictor(shipped_copy)
    assert p.runtime == "torchscript"
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: ") and "does not exist" in err[0] and err[0].endswith(".")
    with pytest.raises(FkdError, match="does not exist"):
        artifact.Predictor(shipped_copy, runtime="onnx")


def test_stale_twin_falls_back_to_torchscript_and_is_refused_as_onnx(shipped_copy: Path, tmp_path: Path,
                                                                    capfd) -> None:
    other = tmp_path / "other" / "fkd.pt"  # a twin exported from other weights, placed beside the shipped ones
    torch_weights.export(TinyKeypoints().eval(), other, {})
    shutil.copy(other.with_suffix(".onnx"), shipped_copy.with_suffix(".onnx"))
    capfd.readouterr()
    assert artifact.Predictor(shipped_copy).runtime == "torchscript"
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stale twin" in err[0], err
    with pytest.raises(FkdError, match="stale twin"):
        artifact.Predictor(shipped_copy, runtime="onnx")
    # the metadata comes from the TorchScript file then, not from the stale twin
    assert "training" in artifact.read_metadata(shipped_copy)


def test_an_onnx_twin_alone_is_enough(shipped_weights: Path, tmp_path: Path) -> None:
    """A user who copies only fkd.onnx can still run it (there is no .pt for it to be stale against)."""
    onnx = tmp_path / "fkd.onnx"
    shutil.copy(shipped_weights.with_suffix(".onnx"), onnx)
    p = artifact.Predictor(onnx)
    assert p.runtime == "onnx" and p(np.zeros((1, 96, 96), np.uint8)).shape == (1, 15, 2)


def test_a_bad_runtime_name_is_a_usage_error(shipped_weights: Path) -> None:
    with pytest.raises(FkdError, match="--runtime must be"):
        artifact.Predictor(shipped_weights, runtime="tensorrt")


# -- the light install: a fresh venv without torch ----------------------------------------------------------
IGNORED = shutil.ignore_patterns(".venv", ".git", "build", "runs", ".cache", "*.egg-info", "__pycache__",
                                 ".pytest_cache", ".ruff_cache", ".mypy_cache")


@pytest.mark.slow_install
def test_light_install_predicts_without_torch_and_names_the_extra(photo: Path, shipped_weights: Path,
                                                                   tmp_path: Path) -> None:
    """``pip install fkd`` (no extra) in a new venv: fkd-predict works; the training side says what to install."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=IGNORED)  # build in a copy: the checkout stays untouched
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    pip = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(source)], capture_output=True,
                         text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-2000:]
    check = subprocess.run([str(bin_dir / "python"), "-c", "import importlib.util as u; "
                            "print(u.find_spec('torch') is None, u.find_spec('pandas') is None)"],
                           capture_output=True, text=True, check=True)
    assert check.stdout.split() == ["True", "True"], "the light install pulled in torch or pandas"

    out = tmp_path / "faces.jsonl"
    done = subprocess.run([str(bin_dir / "fkd-predict"), str(photo), "--export", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(out.read_text())["faces"]) == 1
    if (REPO / "realtime/api.py").is_file():  # the Python API, in the same light venv
        api = subprocess.run([str(bin_dir / "python"), "-c", "import sys, cv2, fkd; "
                              "print(len(fkd.Landmarker().landmarks(cv2.imread(sys.argv[1]))))", str(photo)],
                             capture_output=True, text=True, timeout=120)
        assert api.returncode == 0 and api.stdout.strip() == "1", api.stderr

    for command in (["fkd-train", "--data", str(photo.parent)], ["fkd-eval", str(photo.parent)]):
        done = subprocess.run([str(bin_dir / command[0]), *command[1:]], capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0] == f'error: {command[0]} needs the train extra (torch, pandas, matplotlib, onnx not ' \
                           'installed): pip install "fkd[train]".'

    lone = tmp_path / "lone" / "fkd.pt"  # weights without their twin: the fallback needs torch, and says so
    lone.parent.mkdir()
    shutil.copy(shipped_weights, lone)
    done = subprocess.run([str(bin_dir / "fkd-predict"), str(photo), "--weights", str(lone)], capture_output=True,
                          text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "does not exist" in lines[0] and 'pip install "fkd[train]"' in lines[0]
