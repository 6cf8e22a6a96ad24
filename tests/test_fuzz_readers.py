"""Hypothesis fuzzing of every reader fkd has (issue 9): each either returns what it promises
or raises FkdError with one sentence, whatever the bytes; well-formed data round-trips.

Kept short for CI (50 examples each, no deadline); raise ``max_examples`` to dig deeper.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fkd.model.errors import FkdError
from fkd.model.metadata import base_metadata, check_metadata, parse_metadata
from fkd.model.schema import CSV_COLUMNS, KEYPOINTS
from fkd.realtime.outputs.records import Face, JsonLines, frame_record, image_record, keypoints_of
from fkd.train.data.kaggle import read_test_csv, read_training_csv, write_test_csv
from fkd.train.data.pts import read_pts

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def one_sentence(error: FkdError) -> None:
    text = str(error)
    assert text and "\n" not in text and text.endswith("."), text


# -- Kaggle CSVs ---------------------------------------------------------------------------------------------
cell = st.one_of(st.integers(-10, 10**12).map(str), st.floats(allow_nan=True).map(repr), st.text(max_size=8),
                 st.just(""))
pixels = st.one_of(
    st.just(" ".join(["7"] * 9216)),
    st.lists(st.integers(-5, 300), min_size=0, max_size=20).map(lambda v: " ".join(map(str, v))),
    st.text(max_size=30),
)


@FUZZ
@given(rows=st.lists(st.tuples(cell, pixels), max_size=4), header=st.sampled_from(["ImageId,Image", "Image,ImageId",
                                                                                   "ImageId", "x,y"]))
def test_test_csv_reader_returns_or_says_why(tmp_path: Path, rows: list, header: str) -> None:
    path = tmp_path / "test.csv"
    path.write_text(header + "\n" + "".join(f'{a},"{b}"\n' for a, b in rows))
    try:
        ids, images = read_test_csv(path)
    except FkdError as e:
        one_sentence(e)
        return
    assert ids.dtype == np.int64 and images.shape == (len(ids), 96, 96) and images.dtype == np.uint8


@FUZZ
@given(values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=4)),
                       min_size=30, max_size=30), image=pixels)
def test_training_csv_reader_returns_or_says_why(tmp_path: Path, values: list, image: str) -> None:
    path = tmp_path / "training.csv"
    cells = ["" if v is None else (repr(v) if isinstance(v, float) else json.dumps(v)) for v in values]
    path.write_text(",".join(CSV_COLUMNS) + ",Image\n" + ",".join(cells) + f',"{image}"\n')
    try:
        faces = read_training_csv(path)
    except FkdError as e:
        one_sentence(e)
        return
    assert faces.mask.any(), "a set with no label must be refused, not returned"
    assert np.isfinite(faces.points[faces.mask]).all()


@FUZZ
@given(ids=st.lists(st.integers(0, 2**40), min_size=1, max_size=3, unique=True), seed=st.integers(0, 2**16))
def test_test_csv_round_trip(tmp_path: Path, ids: list[int], seed: int) -> None:
    images = np.random.default_rng(seed).integers(0, 256, (len(ids), 96, 96), dtype=np.uint8)
    back_ids, back = read_test_csv(write_test_csv(tmp_path / "t.csv", np.array(ids), images))
    assert back_ids.tolist() == ids and np.array_equal(back, images)


# -- .pts landmark files ---------------------------------------------------------------------------------------
number = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10**12, 10**12).map(str),
                   st.text(alphabet="0123456789.-eE+naif", max_size=6))


@FUZZ
@given(body=st.one_of(st.text(max_size=200), st.lists(number, min_size=130, max_size=140).map(" ".join)),
       braces=st.booleans(), raw=st.binary(max_size=40))
def test_pts_reader_returns_finite_points_or_says_why(tmp_path: Path, body: str, braces: bool, raw: bytes) -> None:
    path = tmp_path / "x.pts"
    text = f"version: 1\nn_points: 68\n{{\n{body}\n}}\n" if braces else body
    path.write_bytes(raw + text.encode("utf-8", "surrogatepass"))  # any bytes, not only UTF-8
    try:
        points = read_pts(path)
    except FkdError as e:
        one_sentence(e)
        return
    assert points.shape == (68, 2) and np.isfinite(points).all()


@FUZZ
@given(points=st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=136, max_size=136))
def test_pts_round_trip(tmp_path: Path, points: list[float]) -> None:
    values = np.array(points).reshape(68, 2)
    path = tmp_path / "y.pts"
    path.write_text("version: 1\nn_points: 68\n{\n" + "\n".join(f"{x!r} {y!r}" for x, y in values.tolist()) + "\n}\n")
    assert np.array_equal(read_pts(path), values - 1.0)


# -- weights metadata --------------------------------------------------------------------------------------------
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=10)
sections = st.sampled_from(["format", "keypoints", "input", "crop_convention", "face_score", "detector", "output"])


@FUZZ
@given(changes=st.dictionaries(sections, json_values, max_size=3), drop=st.lists(sections, max_size=2))
def test_metadata_check_accepts_or_says_why(changes: dict, drop: list) -> None:
    meta = {**base_metadata(), **changes}
    for key in drop:
        meta.pop(key, None)
    try:
        check_metadata(meta, Path("w.pt"))
    except FkdError as e:
        one_sentence(e)
        assert "w.pt" in str(e)


@FUZZ
@given(text=st.one_of(st.text(max_size=50), json_values.map(json.dumps)))
def test_metadata_text_parses_or_says_why(text: str) -> None:
    try:
        parse_metadata(text, Path("w.pt"))
    except FkdError as e:
        one_sentence(e)


def test_the_real_metadata_passes() -> None:
    check_metadata(base_metadata(), Path("w.pt"))


# -- JSON lines of fkd-live / fkd-predict -------------------------------------------------------------------------
coordinate = st.floats(-1e5, 1e5, allow_nan=False)
faces = st.lists(st.builds(
    Face, id=st.integers(0, 10**6), box=st.tuples(*[st.integers(0, 10**5)] * 4),
    keypoints=st.lists(coordinate, min_size=30, max_size=30).map(lambda v: np.array(v).reshape(15, 2)),
    score=st.floats(0, 1)), max_size=3)


@FUZZ
@given(frames=st.lists(st.tuples(st.floats(0, 1e6), faces), min_size=1, max_size=5),
       name=st.text(min_size=1, max_size=10).filter(lambda s: "\x00" not in s))
def test_jsonl_round_trip(tmp_path: Path, frames: list, name: str) -> None:
    path = tmp_path / f"out-{abs(hash(name))}.jsonl"
    writer = JsonLines(path)
    records = [frame_record(i, t, fs) for i, (t, fs) in enumerate(frames)]
    records.append(image_record(Path(name), 640, 480, frames[0][1]))
    for record in records:
        writer.write(record)
    writer.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(records)
    for line, record, source in zip(lines, records, [f for _, f in frames] + [frames[0][1]]):
        back = json.loads(line)
        assert back == json.loads(json.dumps(record))
        for face_back, face in zip(back["faces"], source):
            assert np.allclose(keypoints_of(face_back), face.keypoints, atol=0.005 + 1e-9)
            assert face_back["id"] == face.id and math.isclose(face_back["score"], face.score, abs_tol=5e-5)
            assert list(face_back["keypoints"]) == list(KEYPOINTS)
    assert not list(tmp_path.glob(".*fkd-*")), "a temporary or lock file was left behind"


def test_a_jsonl_writer_refuses_a_second_writer(tmp_path: Path) -> None:
    first = JsonLines(tmp_path / "a.jsonl")
    with pytest.raises(FkdError, match="another fkd run"):
        JsonLines(tmp_path / "a.jsonl")
    first.close()
    JsonLines(tmp_path / "a.jsonl").close()  # free again once the first is done
