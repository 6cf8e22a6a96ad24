"""Weights made for another input size, other keypoints or another crop are refused, in one
sentence naming the file, before any frame is cropped with them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from fkd.model.crop import CONVENTION
from fkd.model.errors import FkdError
from fkd.model.metadata import base_metadata, check_metadata

WEIGHTS = Path("somewhere/fkd-foreign.pt")


def good() -> dict:
    return copy.deepcopy(base_metadata())


def refused(meta: dict) -> str:
    with pytest.raises(FkdError) as caught:
        check_metadata(meta, WEIGHTS)
    message = str(caught.value)
    assert str(WEIGHTS) in message and message.endswith(".") and "\n" not in message
    return message


def test_matching_metadata_passes() -> None:
    check_metadata(good(), WEIGHTS)


@pytest.mark.parametrize("size", [[128, 128], [96, 112], None])
def test_wrong_input_size(size: list[int] | None) -> None:
    meta = good()
    meta["input"]["size"] = size
    assert "96x96" in refused(meta)


def test_missing_input_section() -> None:
    meta = good()
    del meta["input"]
    refused(meta)


def test_wrong_keypoint_count() -> None:
    meta = good()
    meta["keypoints"] = meta["keypoints"][:4]
    assert "keypoints" in refused(meta)
    meta = good()
    meta["keypoints"] = [*meta["keypoints"], "chin"]
    assert "keypoints" in refused(meta)


def test_keypoints_in_another_order() -> None:
    meta = good()
    meta["keypoints"] = list(reversed(meta["keypoints"]))
    refused(meta)


@pytest.mark.parametrize("field", ["shift_x", "shift_y", "side"])
def test_another_crop_convention(field: str) -> None:
    meta = good()
    meta["crop_convention"][field] = getattr(CONVENTION, field) + 0.01
    assert "crop convention" in refused(meta)


def test_crop_convention_missing_or_not_numbers() -> None:
    meta = good()
    del meta["crop_convention"]
    assert "crop convention" in refused(meta)
    meta = good()
    meta["crop_convention"]["side"] = "0.998"
    assert "crop convention" in refused(meta)


def test_refused_file_is_refused_by_the_predictor(tmp_path: Path) -> None:
    """End to end: a real TorchScript file carrying a wrong input size does not load."""
    torch = pytest.importorskip("torch", reason="writing a TorchScript file needs torch (the train extra)")
    from fkd.model.artifact import Predictor
    from fkd.model.net import KeypointNet
    from fkd.model.torch_weights import export

    meta = {"input": {**base_metadata()["input"], "size": [128, 128]}}
    path = tmp_path / "big.pt"
    torch.manual_seed(0)
    export(KeypointNet(width=8), path, meta, onnx=False)
    with pytest.raises(FkdError, match=r"big\.pt expects \[128, 128\] inputs"):
        Predictor(path)
