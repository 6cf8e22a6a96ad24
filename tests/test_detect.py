"""The face detector (YuNet through cv2.FaceDetectorYN) on real photos and frames: its model
file's check, grey and colour inputs, its five points, an empty frame and a crowd."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fkd.model.crop import Square, box_iou, square_from_keypoints
from fkd.model.detect import YUNET_SHA256, FaceDetector, detection_scale, yunet_path
from fkd.model.errors import FkdError
from fkd.model.schema import DETECTOR_POINTS, INDEX, ibug68_to_kaggle15
from fkd.train.data.pts import read_pts


def _photo(shared: Path, name: str = "afw/1051618982_1") -> tuple[np.ndarray, np.ndarray]:
    base = shared / "data" / "300w" / name
    grey = cv2.imread(str(base.with_suffix(".jpg")), cv2.IMREAD_GRAYSCALE)
    return grey, ibug68_to_kaggle15(read_pts(base.with_suffix(".pts")))


def test_the_shipped_model_is_yunet_with_its_licence_beside_it() -> None:
    import hashlib

    path = yunet_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == YUNET_SHA256
    assert "MIT License" in (path.parent / "LICENSE").read_text()


def test_an_altered_or_missing_model_is_refused_in_one_sentence(tmp_path: Path) -> None:
    altered = tmp_path / "yunet.onnx"
    data = bytearray(yunet_path().read_bytes())
    data[-1] ^= 1
    altered.write_bytes(bytes(data))
    with pytest.raises(FkdError, match=r"yunet\.onnx is not YuNet's 2023mar release"):
        FaceDetector(model=altered)
    with pytest.raises(FkdError, match="cannot be read"):
        FaceDetector(model=tmp_path / "missing.onnx")
    shutil.copy(yunet_path(), tmp_path / "copy.onnx")
    assert FaceDetector(model=tmp_path / "copy.onnx").detect(np.zeros((64, 64), np.uint8), min_face=20) == []


def test_grey_and_colour_frames_find_the_same_face_with_its_five_points_in_place(shared: Path) -> None:
    grey, kp = _photo(shared)
    detector = FaceDetector()
    from_grey = detector.detect(grey, min_face=40)
    from_colour = detector.detect(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), min_face=40)
    from_alpha = detector.detect(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGRA), min_face=40)
    assert from_grey and from_colour and from_alpha
    assert [d.box for d in from_grey] == [d.box for d in from_colour] == [d.box for d in from_alpha]
    face = from_grey[0]
    truth = square_from_keypoints(kp)
    assert box_iou(face.box, truth.as_box()) > 0.4
    # the five points are the subject's right eye, left eye, nose tip, right and left mouth corner
    labelled = kp[[INDEX[n] for n in DETECTOR_POINTS]]
    err = np.linalg.norm(face.landmarks - labelled, axis=1) / truth.side
    assert (err < 0.08).all(), err
    assert face.landmarks[0, 0] < face.landmarks[1, 0]  # the subject's right eye is on the image's left
    # the first crop frames the face as the labelled keypoints would
    sq = face.square
    assert abs(sq.side / truth.side - 1) < 0.2 and sq.iou(truth) > 0.6


def test_a_frame_without_a_face_gives_nothing(shared: Path) -> None:
    detector = FaceDetector()
    rng = np.random.default_rng(0)
    assert detector.detect(np.full((360, 640, 3), 128, np.uint8), min_face=20) == []
    assert detector.detect(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8), min_face=20) == []


def crowd(shared: Path, n: int = 12, side: int = 160) -> tuple[np.ndarray, list[Square]]:
    """``n`` shared 300-W photos in a grid (4 across), and each labelled face's square in it."""
    cols = 4
    sheet = np.zeros((side * ((n + cols - 1) // cols), side * cols), np.uint8)
    truth = []
    for i, jpg in enumerate(sorted((shared / "data/300w/lfpw_train").glob("*.jpg"))[:n]):
        grey = cv2.imread(str(jpg), cv2.IMREAD_GRAYSCALE)
        k = side / grey.shape[0]
        y0, x0 = side * (i // cols), side * (i % cols)
        sheet[y0:y0 + side, x0:x0 + side] = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
        sq = square_from_keypoints(ibug68_to_kaggle15(read_pts(jpg.with_suffix(".pts"))) * k)
        truth.append(Square(sq.x0 + x0, sq.y0 + y0, sq.side))
    return sheet, truth


def test_a_dozen_faces_in_one_frame_are_all_proposed(shared: Path) -> None:
    sheet, truth = crowd(shared)
    found = FaceDetector().detect(sheet, min_face=20)
    assert len(found) >= len(truth)
    for face in truth:
        assert max(d.square.iou(face) for d in found) > 0.5, face


def test_the_frame_is_shrunk_only_as_far_as_the_smallest_face_allows() -> None:
    assert detection_scale((360, 640), 20, None) == 1.0  # 20 px faces: full size
    assert detection_scale((360, 640), 80, None) == 0.25
    assert detection_scale((360, 640), 10, None) == 1.0  # never enlarged
    assert detection_scale((3000, 4000), 20, 800) == 0.2  # and a photo's longer side at most max_side
