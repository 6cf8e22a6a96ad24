"""The MTFL reader puts its five points under the right Kaggle names, in the crop convention."""

import shutil
from pathlib import Path

import cv2
import numpy as np

from fkd.model.schema import INDEX
from fkd.train.data.mtfl import AUX_PREFIX, POINTS, eye_nme, load_mtfl, read_landmarks


def test_five_points_map_to_the_kaggle_names(shared: Path) -> None:
    folder = shared / "data" / "mtfl"
    rows = read_landmarks(folder)
    assert len(rows) == 7412 and sum(1 for _, haar, _ in rows if not haar) == 680
    file, _, pts = rows[0]
    first = (folder / "landmarks.csv").read_text().splitlines()[1].split(",")
    assert file == first[0]
    values = np.array(first[3:], float).reshape(5, 2)
    for name, xy in zip(POINTS, values):
        assert np.allclose(pts[INDEX[name]], xy)
    # Kaggle's "left" is the subject's left, on the image's right, in (almost) every row
    left_right = np.array([p[INDEX["left_eye_center"], 0] > p[INDEX["right_eye_center"], 0] for _, _, p in rows])
    mouth = np.array([p[INDEX["mouth_left_corner"], 0] > p[INDEX["mouth_right_corner"], 0] for _, _, p in rows])
    assert left_right.mean() > 0.99 and mouth.mean() > 0.97
    assert {"nose_tip", "left_eye_center", "right_eye_center", "mouth_left_corner", "mouth_right_corner"} == set(POINTS)


def test_reader_crops_faces_with_only_those_points_labelled(shared: Path, tmp_path: Path) -> None:
    folder = shared / "data" / "mtfl"
    lines = (folder / "landmarks.csv").read_text().splitlines()
    small = tmp_path / "mtfl"
    misses = [line for line in lines[1:] if ",0," in line][:2]  # two turned heads the old Haar cascade missed
    picks = [lines[0], *lines[1:4], *misses]
    for line in picks[1:]:
        f = small / line.split(",")[0]
        f.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / line.split(",")[0], f)
    # the first face's photo painted flat grey: the detector cannot find it, so it falls back
    blank = small / picks[1].split(",")[0]
    cv2.imwrite(str(blank), np.full_like(cv2.imread(str(blank)), 128))
    (small / "landmarks.csv").write_text("\n".join(picks) + "\n")
    faces = load_mtfl(small, workers=1)
    assert len(faces) == 5 and all(i.startswith(AUX_PREFIX) for i in faces.ids)
    labelled = sorted(INDEX[n] for n in POINTS)
    assert (faces.mask.sum(1) == 5).all() and (np.flatnonzero(faces.mask[0]) == labelled).all()
    # only the blanked face is cropped from its points; YuNet finds the two turned heads
    assert faces.fallback.tolist() == [True, False, False, False, False]
    # in the 96-px crop the subject's left eye sits on the image's right, near Kaggle's mean place
    le, re = faces.points[:, INDEX["left_eye_center"]], faces.points[:, INDEX["right_eye_center"]]
    assert (le[:, 0] > 48).all() and (re[:, 0] < 48).all()
    assert eye_nme(faces.points, faces.points, faces.mask)["nme"] == 0.0
