"""The label offset: measured from real residuals, stored in both files of a weights pair, added
after flip averaging by the Predictor, and refused in one sentence when malformed."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fkd.model import artifact, metadata, torch_weights
from fkd.model.errors import FkdError
from fkd.model.net import KeypointNet
from fkd.train.teachers import label_offset

OFFSET = np.linspace(-0.5, 0.9, 15).astype(np.float32)


def test_measure_recovers_a_known_x_offset_and_skips_unlabelled_points() -> None:
    rng = np.random.default_rng(0)
    pred = rng.uniform(10, 80, (400, 15, 2))
    points = pred.copy()
    points[..., 0] += OFFSET + rng.normal(0, 0.05, (400, 15))
    points[..., 1] += 3.0  # a vertical offset is not what this measures
    mask = rng.random((400, 15)) > 0.3
    mask[:, 4] = False  # a point no face labels gets no offset
    points[~mask] = 0.0  # unlabelled points hold zeros, as FaceSet stores them
    got = label_offset.measure(pred, points, mask)
    assert got[4] == 0.0
    keep = np.arange(15) != 4
    assert np.abs(got[keep] - OFFSET[keep]).max() < 0.03


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(1)
    path = tmp_path / "w.pt"
    torch_weights.export(KeypointNet(width=8), path, {"note": "label offset test"})
    return path


def crops() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (5, 96, 96)).astype(np.uint8)


@pytest.mark.parametrize("runtime", ["onnx", "torchscript"])
@pytest.mark.parametrize("flip", [False, True])
def test_predictor_adds_the_stored_offset_to_x_after_flip_averaging(weights: Path, runtime: str,
                                                                    flip: bool) -> None:
    before = artifact.Predictor(weights, runtime=runtime, flip=flip)(crops())
    torch_weights.update_metadata(weights, label_offset.metadata(OFFSET, 10, "test"))
    after = artifact.Predictor(weights, runtime=runtime, flip=flip)
    got = after(crops())
    # x moves by exactly the offset (not cancelled by the mirrored pass), y does not move
    assert np.allclose(got[..., 0] - before[..., 0], OFFSET[None], atol=1e-4)
    assert np.allclose(got[..., 1], before[..., 1], atol=1e-5)
    assert np.allclose(after.without_label_offset()(crops()), before, atol=1e-5)


def test_update_metadata_keeps_the_twin_fresh_and_the_network_unchanged(weights: Path) -> None:
    twin = weights.with_suffix(".onnx")
    tag_before = artifact.open_twin(weights).session.get_modelmeta().custom_metadata_map[metadata.PT_TAG]
    meta = torch_weights.update_metadata(weights, label_offset.metadata(OFFSET, 10, "test"))
    opened = artifact.open_twin(weights)
    assert opened.problem == "" and opened.meta is not None  # not stale: the new hash is in the twin
    assert opened.session.get_modelmeta().custom_metadata_map[metadata.PT_TAG] != tag_before
    assert opened.meta[metadata.LABEL_OFFSET]["x_px"] == meta[metadata.LABEL_OFFSET]["x_px"]
    assert torch_weights.read_metadata(weights)["note"] == "label offset test"  # the rest is kept
    assert sorted(p.name for p in weights.parent.iterdir()) == [twin.name, weights.name]  # no temporaries


@pytest.mark.parametrize("bad", [[0.1] * 14, [0.1] * 14 + [500.0], [0.1] * 14 + [float("nan")],
                                 [0.1] * 14 + ["x"], "0.1"])
def test_a_malformed_offset_is_refused_in_one_sentence(weights: Path, tmp_path: Path, bad: object) -> None:
    copy = tmp_path / "bad.pt"
    shutil.copy(weights, copy)  # TorchScript alone: the metadata check is the one under test
    module = torch.jit.load(str(copy))
    meta = {**torch_weights.read_metadata(copy), metadata.LABEL_OFFSET: {"x_px": bad}}
    torch.jit.save(module, str(copy), _extra_files={metadata.META_NAME: json.dumps(meta)})
    with pytest.raises(FkdError) as err:
        torch_weights.read_metadata(copy)
    assert str(err.value) == f"weights file {copy} has a label_offset that is not 15 x shifts within the 96-px crop."
