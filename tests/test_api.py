"""The Python API (``import fkd``): cheap to import, the README's example runs, and its results
are the ones the commands report, on real photos and a real clip with the shipped weights."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

PHOTO = "data/300w/afw/1051618982_1.jpg"  # the photo the README's example reads


def readme_example() -> str:
    """The python block of the README's "Python API" section, exactly as a reader sees it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section should hold one python example"
    return blocks[0]


def test_import_is_cheap_and_lists_the_api() -> None:
    code = ("import sys, fkd; print(fkd.__all__); "
            "print(sorted(m for m in ('torch', 'cv2', 'onnxruntime', 'fkd.realtime.api') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    listed, heavy = proc.stdout.splitlines()
    assert "Landmarker" in listed and "FaceTracker" in listed and "FaceLandmarks" in listed
    assert heavy == "[]", "import fkd alone loaded " + heavy


def test_every_name_in_all_resolves() -> None:
    import fkd

    for name in fkd.__all__:
        assert getattr(fkd, name) is not None
    with pytest.raises(AttributeError):
        fkd.no_such_name  # noqa: B018


def test_readme_example_runs(shared: Path) -> None:
    assert (shared / PHOTO).is_file()
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(REPO)  # the example reads ../shared relative to the checkout root, as the README says
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(readme_example(), "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()  # the photo holds one face
    parts = re.fullmatch(r"(\d+) \((.*?)\) [\d.]+ \((.*?)\) (-?[\d.]+)", lines[0])  # id, box, score, nose, yaw
    assert parts, lines[0]
    face_id = parts[1]
    box = tuple(int(v) for v in parts[2].split(","))
    nose = tuple(float(v) for v in parts[3].split(","))
    assert face_id == "0" and len(box) == 4 and abs(float(parts[4])) < 90
    assert box[0] < nose[0] < box[0] + box[2] and box[1] < nose[1] < box[1] + box[3]


@pytest.fixture(scope="module")
def marker():
    import fkd

    return fkd.Landmarker()


def test_photo_matches_fkd_predict(shared: Path, marker, tmp_path: Path) -> None:
    """The API and fkd-predict run one pipeline: same faces, boxes, scores and keypoints."""
    import cv2
    from typer.testing import CliRunner

    from fkd.realtime.cli import predict_app

    photo = shared / PHOTO
    faces = marker.landmarks(cv2.imread(str(photo)))
    result = CliRunner().invoke(predict_app, [str(photo), "--export", str(tmp_path / "f.jsonl")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "f.jsonl").read_text())
    assert [f.box for f in faces] == [tuple(f["box"]) for f in record["faces"]]
    for face, want in zip(faces, record["faces"]):
        assert round(face.score, 4) == want["score"]
        assert np.allclose([face.point(n) for n in want["keypoints"]], list(want["keypoints"].values()), atol=0.01)


def test_grey_and_bgr_give_the_same_faces(shared: Path, marker) -> None:
    import cv2

    bgr = cv2.imread(str(shared / PHOTO))
    a, b = marker.landmarks(bgr), marker.landmarks(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert [f.box for f in a] == [f.box for f in b]
    assert all(np.array_equal(f.keypoints, g.keypoints) for f, g in zip(a, b))


def test_caller_boxes_give_one_result_each_in_order(shared: Path, marker) -> None:
    """A box of the caller's own detector: keypoints land on that face; a second box elsewhere
    still gets its result, in the order given, and keypoints come back in image pixels."""
    import cv2

    image = cv2.imread(str(shared / PHOTO))
    found = marker.landmarks(image)[0]
    x, y, w, h = found.box
    elsewhere = (0, 0, 40, 40)
    faces = marker.landmarks(image, boxes=[elsewhere, (x, y, w, h)])
    assert [f.id for f in faces] == [0, 1]
    assert faces[1].keypoints.shape == (15, 2)
    assert np.abs(faces[1].keypoints - found.keypoints).max() < 0.1 * w  # the same face, from another crop
    assert all(0.0 <= f.score <= 1.0 for f in faces)


def test_bad_image_is_one_sentence(marker) -> None:
    import fkd

    with pytest.raises(fkd.UsageError, match="uint8"):
        marker.landmarks(np.zeros((10, 10), np.float32))
    with pytest.raises(fkd.UsageError, match="shape"):
        marker.landmarks(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(fkd.UsageError, match="positive width"):
        marker.landmarks(np.zeros((10, 10), np.uint8), boxes=[(0, 0, 0, 5)])


def test_missing_weights_name_the_file(tmp_path: Path) -> None:
    import fkd

    with pytest.raises(fkd.FkdError, match=r"gone\.pt"):
        fkd.Landmarker(weights=tmp_path / "gone.pt")


def test_tracker_follows_a_face_with_a_stable_id(shared: Path, marker) -> None:
    import cv2

    capture = cv2.VideoCapture(str(shared / "video/webcam_320x240.mp4"))
    ids: list[set[int]] = []
    with marker.tracker(fps=capture.get(cv2.CAP_PROP_FPS)) as tracker:
        for _ in range(90):
            ok, frame = capture.read()
            if not ok:
                break
            ids.append({f.id for f in tracker.update(frame)})
    capture.release()
    assert len(ids) == 90
    assert sum(bool(i) for i in ids) >= 85  # one face, tracked on nearly every frame
    assert len(set().union(*ids)) == 1  # and always under one id
