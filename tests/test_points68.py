"""The 68 iBUG points as declared facts: names, flip partners, contours, the whole-face crop,
and flip augmentation of real 300-W faces relabelling them as the mirror demands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fkd.model.crop import to_crop
from fkd.model.detect import FaceDetector
from fkd.model.points import IBUG68_SET, KAGGLE15, point_set
from fkd.model.schema import (
    IBUG68,
    IBUG68_CONTOURS,
    IBUG68_FLIP_PERMUTATION,
    IBUG68_NME_PAIR,
    ibug68_to_kaggle15,
    mirror_points,
)
from fkd.train.data.augment import AugmentConfig
from fkd.train.data.batch_augment import DeviceFaces, geometry, label_flip
from fkd.train.data.pts import find_pairs, load_pts_folder, read_pts

STILL = dict(rotate_deg=0, scale=0, shift_px=0, brightness=0, contrast=0, gamma=0, blur=0, noise=0)


def _side(name: str) -> str | None:
    return "right" if name.startswith("right_") else "left" if name.startswith("left_") else None


def test_names_are_68_unique_and_partners_are_named_as_mirrors() -> None:
    assert len(IBUG68) == 68 and len(set(IBUG68)) == 68
    assert IBUG68[30] == "nose_bridge_3" and IBUG68_NME_PAIR == (36, 45)
    assert (IBUG68[36], IBUG68[45]) == ("right_eye_0", "left_eye_3")  # the outer eye corners
    for i, j in enumerate(IBUG68_FLIP_PERMUTATION):
        a, b = IBUG68[i], IBUG68[j]
        if _side(a) is not None:  # a sided point's partner is on the other side, in the same part
            assert {_side(a), _side(b)} == {"left", "right"}
            assert a.split("_")[1] == b.split("_")[1]
        elif a.startswith("jaw_"):
            assert int(a[4:]) + int(b[4:]) == 16


def test_flipping_twice_is_the_identity() -> None:
    perm = np.array(IBUG68_FLIP_PERMUTATION)
    assert sorted(perm.tolist()) == list(range(68))
    assert (perm[perm] == np.arange(68)).all()
    pts = np.random.default_rng(0).uniform(0, 95, (3, 68, 2))
    assert np.allclose(mirror_points(mirror_points(pts, 96), 96), pts)
    assert label_flip(68) == IBUG68_FLIP_PERMUTATION


def test_contours_cover_every_point_once() -> None:
    covered = sorted(i for idx, _ in IBUG68_CONTOURS.values() for i in idx)
    assert covered == list(range(68))
    assert IBUG68_CONTOURS["right_eye"][1] and not IBUG68_CONTOURS["jaw"][1]


def test_point_sets_by_count() -> None:
    assert point_set(15) is KAGGLE15 and point_set(68) is IBUG68_SET
    assert IBUG68_SET.metadata()["flip"] == list(IBUG68_FLIP_PERMUTATION)
    with pytest.raises(ValueError):
        point_set(5)


def test_a_mirrored_real_face_puts_each_point_on_its_partners_side(shared: Path) -> None:
    """On real 300-W labels: in the mirrored photo, relabelled, every subject-right point lies
    left in the image of its subject-left partner, as it does in the photo itself."""
    pairs = [(i, j) for i, j in enumerate(IBUG68_FLIP_PERMUTATION) if _side(IBUG68[i]) == "right"]
    pairs += [(i, 16 - i) for i in range(8)]  # the jaw: ear to chin on the subject's right first
    faces = [read_pts(pts) for _, pts in find_pairs(shared / "data/300w/helen_train")[:60]]
    for pts in faces:
        mirrored = mirror_points(pts, 1000)
        for p in (pts, mirrored):
            right_of_partner = sum(p[i, 0] >= p[j, 0] for i, j in pairs)
            assert right_of_partner <= 2  # a strongly turned head may cross one or two jaw points
        # and the mirror keeps the 15 Kaggle keypoints it gives consistent with Kaggle's own mirror
        assert np.allclose(ibug68_to_kaggle15(mirrored), mirror_points(ibug68_to_kaggle15(pts), 1000))


def test_batched_flip_swaps_the_68_partners_of_real_faces(shared: Path, pts_folder: Path, tmp_path: Path) -> None:
    """The training augmentation mirrors a whole-face crop of a real photo: each relabelled
    point is the mirror of its partner, and the pixels moved with it."""
    faces = load_pts_folder(pts_folder, tmp_path, workers=1, points=68)
    assert faces.points.shape[1:] == (68, 2) and faces.mask.all()
    dev = DeviceFaces.from_faceset(faces, torch.device("cpu"))
    index = torch.arange(len(faces))
    plain, p0, _ = geometry(dev, index, AugmentConfig(flip=0.0, **STILL), torch.Generator().manual_seed(0))
    flipped, p1, _ = geometry(dev, index, AugmentConfig(flip=1.0, **STILL), torch.Generator().manual_seed(0))
    want = p0.numpy()[:, list(IBUG68_FLIP_PERMUTATION)]
    want[..., 0] = 95 - want[..., 0]
    assert np.allclose(p1.numpy(), want, atol=1e-3)
    assert np.allclose(flipped.numpy(), plain.numpy()[..., ::-1], atol=1.0)
    # the subject's right outer eye corner is on the image's left in both, as in every upright face
    assert (p0[:, 36, 0] < p0[:, 45, 0]).all() and (p1[:, 36, 0] < p1[:, 45, 0]).all()


def test_the_whole_face_crop_frames_the_jaw_from_yunets_five_points(shared: Path) -> None:
    """YuNet's five points, framed by the calibrated convention, give a crop that holds the whole
    face: chin and jaw inside it (and the 15-point crop, for contrast, cuts the chin off)."""
    det = FaceDetector()
    inside, chin_cut, n = 0, 0, 0
    import cv2

    for img, pts in find_pairs(shared / "data/300w/lfpw_train")[:40]:
        gray = cv2.imread(str(img), cv2.IMREAD_GRAYSCALE)
        found = det.detect(gray, min_face=60)
        p = read_pts(pts)
        if not found:
            continue
        d = min(found, key=lambda d: np.linalg.norm(d.landmarks[2] - p[30]))
        n += 1
        whole = to_crop(p, IBUG68_SET.square_from_landmarks(d.landmarks))
        inside += bool(((whole >= 0) & (whole <= 95)).all())
        chin_cut += bool(to_crop(p, KAGGLE15.square_from_landmarks(d.landmarks))[8, 1] > 95)
    assert n >= 35
    assert inside >= 0.9 * n, f"only {inside} of {n} whole-face crops hold all 68 points"
    assert chin_cut >= 0.5 * n


def test_fkd_train_points_68_exports_a_68_point_model(pts_folder: Path, tmp_path: Path) -> None:
    """A one-epoch run of ``fkd-train --points 68`` end to end: whole-face crops, a 68-point head,
    and weights whose metadata declares the 68 and their crop, loaded by the predictor."""
    from typer.testing import CliRunner

    from fkd.model.artifact import Predictor, read_metadata
    from fkd.train.cli import train_app

    run = tmp_path / "run"
    result = CliRunner().invoke(train_app, ["--points", "68", "--data", str(pts_folder), "--output", str(run),
                                            "--width", "8", "--batch-size", "8", "--epochs", "1", "--threads", "1",
                                            "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    meta = read_metadata(run / "fkd.pt")
    assert meta["points"]["count"] == 68 and meta["crop_convention"] == IBUG68_SET.convention.as_dict()
    assert len(meta["label_offset"]["x_px"]) == 68 and meta["training"]["points"] == 68
    predictor = Predictor(run / "fkd.pt", points=68)
    assert predictor.points is IBUG68_SET and predictor.run(np.zeros((1, 96, 96), np.uint8))[0].shape == (1, 68, 2)
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["per_keypoint"]) == 68


def test_fkd_train_points_68_refuses_what_teaches_only_the_15(pts_folder: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fkd.train.cli import train_app

    result = CliRunner().invoke(train_app, ["--points", "68", "--data", str(pts_folder), "--output",
                                            str(tmp_path / "r"), "--dense-weight", "1"])
    assert result.exit_code == 2 and "--points 68 trains the 68 points themselves" in result.output
    assert not (tmp_path / "r").exists()
