"""The bank of negative crops, built from a few real shared photos and clips copied to a temporary root."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fkd.model.errors import FkdError
from fkd.train.data.faceset import FaceSet, id_bucket
from fkd.train.data.negatives import (
    HELD_OUT_BUCKETS,
    KINDS,
    VAL_BUCKETS,
    NegativeBank,
    build_negative_bank,
)

SMALL = {"frames_per_clip": 6, "synthetic_per_kind": 20}


def _copy_photos(shared: Path, root: Path, folder: str, held: int, trained: int) -> None:
    """Real photos of one folder: ``held`` whose face id is held out and ``trained`` that is not."""
    out = root / "data/300w" / folder
    out.mkdir(parents=True)
    want = {True: held, False: trained}
    for pts in sorted((shared / "data/300w" / folder).glob("*.pts")):
        is_held = id_bucket(f"{folder}/{pts.stem}") < HELD_OUT_BUCKETS
        if want[is_held] > 0:
            want[is_held] -= 1
            shutil.copy(pts, out)
            shutil.copy(pts.with_suffix(".jpg"), out)
        if not any(want.values()):
            break


def _mini_shared(shared: Path, root: Path, clips: bool = True) -> Path:
    """A shared-style root: 10 real 300-W photos in two folders and two real clips (one to hold out)."""
    _copy_photos(shared, root, "afw", held=2, trained=4)
    _copy_photos(shared, root, "helen_train", held=2, trained=2)
    if not clips:
        return root
    (root / "video").mkdir()
    shutil.copy(shared / "video/webcam_320x240.mp4", root / "video/webcam_320x240.mp4")
    shutil.copy(shared / "video/talking_head_512.mp4", root / "video/talking_head_512.mp4")
    return root


def _build(root: Path, cache: Path | None) -> NegativeBank:
    return build_negative_bank(root, cache, seed=0, held_out_clip="webcam_320x240", **SMALL)


@pytest.fixture(scope="module")
def bank(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> NegativeBank:
    """One small bank, built once for the tests that only read it."""
    return _build(_mini_shared(shared, tmp_path_factory.mktemp("shared")), None)


def test_every_kind_is_cut_from_real_photos_clips_and_synthesis(bank: NegativeBank) -> None:
    assert bank.crops.dtype == np.uint8 and bank.crops.shape[1:] == (96, 96)
    assert len(bank.kinds) == len(bank.sources) == len(bank.held_out) == len(bank.crops)
    counts = bank.counts()
    assert all(counts[k] > 0 for k in KINDS), counts
    assert set(bank.kinds) <= set(KINDS)
    # each source kind is where it should be
    assert {s.split("/")[0] for s in bank.sources} == {"afw", "helen_train", "video", "synthetic"}
    flat = bank.crops[bank.kinds == "flat"].astype(np.float32)
    assert flat.std(axis=(1, 2)).max() < 5  # a flat patch is flat
    edge = bank.crops[bank.kinds == "edge"]
    assert ((edge == 0).all(axis=1).any(axis=1) | (edge == 0).all(axis=2).any(axis=1)).all()  # a black band


def test_held_out_part_is_disjoint_by_source_and_follows_the_face_buckets(bank: NegativeBank) -> None:
    held = set(bank.sources[bank.held_out])
    trained = set(bank.sources[~bank.held_out])
    assert held and trained and not held & trained
    for source in held | trained:
        if source.startswith("video/"):
            assert (source == "video/webcam_320x240") == (source in held)
        else:
            assert (id_bucket(source) < HELD_OUT_BUCKETS) == (source in held), source
    # validation and test partition the held-out part; the held-out clip is all test
    assert not set(bank.val_index) & set(bank.test_index)
    assert sorted([*bank.val_index, *bank.test_index]) == list(np.flatnonzero(bank.held_out))
    assert bank.test[bank.sources == "video/webcam_320x240"].all()
    photo_test = [s for s in bank.sources[bank.test] if not s.startswith("video/")]
    assert all(VAL_BUCKETS <= id_bucket(s) < HELD_OUT_BUCKETS for s in photo_test)


def test_id_bucket_is_the_face_split_hash() -> None:
    """Negatives are held out exactly when their photo's face is: the two hashes must agree."""
    ids = [f"afw/{i}_1" for i in range(300)]
    faces = FaceSet.from_crops(ids, np.zeros((300, 96, 96), np.uint8), np.zeros((300, 15, 2)), np.ones((300, 15), bool))
    val = faces.split(0.1)[1]
    assert sorted(ids[i] for i in val) == sorted(i for i in ids if id_bucket(i) < VAL_BUCKETS)


def test_cache_is_reused_until_a_source_changes(shared: Path, tmp_path: Path) -> None:
    mini_shared = _mini_shared(shared, tmp_path / "shared", clips=False)  # photos are enough here
    cache = tmp_path / "cache"
    first = _build(mini_shared, cache)
    files = list(cache.glob("negatives-*.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = _build(mini_shared, cache)
    assert again.key == first.key and files[0].stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.crops, first.crops)
    # a changed photo (mirrored) is a new source: a new key and a rebuilt bank
    photo = sorted((mini_shared / "data/300w/afw").glob("*.jpg"))[0]
    gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
    assert gray is not None
    cv2.imwrite(str(photo), np.ascontiguousarray(gray[:, ::-1]))
    changed = _build(mini_shared, cache)
    assert changed.key != first.key
    assert len(list(cache.glob("negatives-*.npz"))) == 2
    name = f"afw/{photo.stem}"
    assert not np.array_equal(changed.crops[changed.sources == name], first.crops[first.sources == name])
    # every other source keeps its own random stream, so its crops are the same as before
    others = first.sources != name
    assert others.any()
    np.testing.assert_array_equal(changed.crops[changed.sources != name], first.crops[others])


def test_draw_gives_augmented_training_negatives_only(bank: NegativeBank) -> None:
    plain = bank.draw(np.random.default_rng(3), 64, augment=False)
    train = {c.tobytes() for c in bank.crops[bank.train_index]}
    assert plain.shape == (64, 96, 96) and plain.dtype == np.uint8
    assert all(c.tobytes() in train for c in plain)
    jittered = bank.draw(np.random.default_rng(3), 64)
    assert jittered.shape == (64, 96, 96) and jittered.dtype == np.uint8
    assert not np.array_equal(jittered, plain)
    np.testing.assert_array_equal(jittered, bank.draw(np.random.default_rng(3), 64))  # same seed, same batch


def test_a_root_without_photos_or_clips_is_one_clear_sentence(tmp_path: Path) -> None:
    with pytest.raises(FkdError, match="no 300-W photos") as err:
        build_negative_bank(tmp_path, None)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")
