"""dlib's 68-point predictor as fkd-train's teacher (issue 27): its 68 -> 15 mapping on real
faces, the content-keyed cache, the MTFL agreement filter, the target riding through
augmentation into the loss, and a light install that never imports dlib."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fkd.model.net import KeypointNet
from fkd.model.schema import INDEX, ibug68_to_kaggle15, mirror_points
from fkd.train.config import TrainConfig
from fkd.train.data.augment import AugmentConfig
from fkd.train.data.batch_augment import DeviceFaces, geometry, label_flip
from fkd.train.data.faceset import FaceSet
from fkd.train.data.mtfl import LABELLED, load_mtfl
from fkd.train.data.pts import load_pts_folder
from fkd.train.evaluation.metrics import keypoint_metrics
from fkd.train.network import TrainView
from fkd.train.teachers.dlib_teacher import (
    DlibTeacher,
    labelled_photos,
    photo_square,
    placed_box,
    square_in_context,
    teacher_answers,
)
from fkd.train.teachers.teaching import MTFL_AGREEMENT, disagreement, mtfl_agrees, taught_targets

pytest.importorskip("dlib", reason="the teacher extra (dlib-bin) is not installed; CI installs it")


@pytest.fixture(scope="module")
def faces(pts_folder: Path) -> FaceSet:
    """16 real AFW faces, cropped as training crops them."""
    return load_pts_folder(pts_folder, workers=1)


@pytest.fixture(scope="module")
def teacher() -> DlibTeacher:
    return DlibTeacher()


class CountingTeacher(DlibTeacher):
    """The real teacher, counting the faces it is asked about (the cache is what is under test)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def answer(self, context: np.ndarray, to_crop: np.ndarray) -> np.ndarray:
        self.asked += 1
        return super().answer(context, to_crop)


def test_the_teacher_maps_its_68_points_to_the_15_like_the_labels(faces: FaceSet, teacher: DlibTeacher) -> None:
    answers = np.stack([teacher.answer(c, a) for c, a in zip(faces.context, faces.context_to_crop)])
    dense = np.stack([teacher.points68(c, a) for c, a in zip(faces.context, faces.context_to_crop)])
    assert np.allclose(answers, np.stack([ibug68_to_kaggle15(p) for p in dense]), atol=1e-4)
    # in crop pixels and in Kaggle's names: the subject's left eye on the image's right, and
    # close to the hand marks (dlib was trained on these photos; 300-W's validation NME is 2.6 %)
    assert (answers[:, INDEX["left_eye_center"], 0] > answers[:, INDEX["right_eye_center"], 0]).all()
    assert keypoint_metrics(answers, faces.points, faces.mask)["nme"] < 0.05


def test_the_box_sits_on_the_crop_square_wherever_the_square_is(faces: FaceSet) -> None:
    assert placed_box(24, 24, 96, (0.0, 0.0), 1.0) == (24, 24, 119, 119)
    left, top, right, bottom = placed_box(10, 20, 100, (0.0, 0.1), 0.5)  # half the side, 0.1 side lower
    assert (left, right + 1) == (35, 85) and (top + bottom + 1) / 2 == 20 + 50 + 10
    for affine in faces.context_to_crop:  # the square found in each context crop...
        x0, y0, side = square_in_context(affine)
        corners = np.array([[x0 - 0.5, y0 - 0.5], [x0 + side - 0.5, y0 + side - 0.5]]) @ affine[:, :2].T + affine[:, 2]
        assert np.allclose(corners, [[-0.5, -0.5], [95.5, 95.5]], atol=1e-3)  # ...is the crop's edge to edge


def test_300w_faces_are_asked_of_their_photos(pts_folder: Path, faces: FaceSet, teacher: DlibTeacher) -> None:
    photos = labelled_photos([pts_folder])
    assert set(photos) == set(faces.ids)
    found = [photo_square(photos[name], crop) for name, crop in zip(faces.ids, faces.crops)]
    assert all(f is not None for f in found)  # every stored crop is cut again exactly
    in_photo = teacher_answers(faces, None, teacher=teacher, photos=photos)
    assert np.allclose(in_photo, [teacher.answer_in_photo(*f) for f in found if f is not None])
    in_context = teacher_answers(faces, None, teacher=teacher)
    assert not np.allclose(in_photo, in_context)  # another resolution, another answer...
    assert np.median(np.linalg.norm(in_photo - in_context, axis=-1)) < 1.5  # ...of the same face (crop px)
    stale = dict(photos)
    stale[faces.ids[0]] = photos[faces.ids[1]]  # a photo that no longer cuts the stored crop
    assert photo_square(stale[faces.ids[0]], faces.crops[0]) is None
    assert np.allclose(teacher_answers(faces, None, teacher=teacher, photos=stale)[0], in_context[0])


def test_answers_are_cached_by_content(faces: FaceSet, tmp_path: Path) -> None:
    teacher = CountingTeacher()
    first = teacher_answers(faces, tmp_path, teacher=teacher)
    assert teacher.asked == len(faces) and (tmp_path / "dlib-answers.npz").is_file()
    again = teacher_answers(faces, tmp_path, teacher=teacher)
    assert teacher.asked == len(faces) and np.array_equal(first, again)  # nobody asked twice
    changed = faces.subset(np.arange(len(faces)))
    changed.context = changed.context.copy()
    changed.context[3] = cv2.GaussianBlur(changed.context[3], (5, 5), 2)  # one face's pixels change
    teacher_answers(changed, tmp_path, teacher=teacher)
    assert teacher.asked == len(faces) + 1
    (tmp_path / "dlib-answers.npz").write_bytes(b"not a cache")  # damaged: asked again, not a crash
    assert np.array_equal(teacher_answers(faces, tmp_path, teacher=teacher), first)
    assert teacher.asked == 2 * len(faces) + 1


@pytest.fixture(scope="module")
def mtfl_faces(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> FaceSet:
    """Twelve real MTFL faces (5 hand marks each)."""
    folder = shared / "data" / "mtfl"
    lines = (folder / "landmarks.csv").read_text().splitlines()
    small = tmp_path_factory.mktemp("mtfl12") / "mtfl"
    for line in lines[1:13]:
        f = small / line.split(",")[0]
        f.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / line.split(",")[0], f)
    (small / "landmarks.csv").write_text("\n".join(lines[:13]) + "\n")
    return load_mtfl(small, workers=1)


def test_the_mtfl_filter_keeps_agreeing_faces_and_drops_the_others(mtfl_faces: FaceSet,
                                                                    teacher: DlibTeacher) -> None:
    answers = np.stack([teacher.answer(c, a) for c, a in zip(mtfl_faces.context, mtfl_faces.context_to_crop)])
    gap = disagreement(answers, mtfl_faces)
    assert np.isfinite(gap).all() and np.median(gap) < MTFL_AGREEMENT  # dlib mostly agrees with the hand marks
    assert (mtfl_agrees(answers, mtfl_faces) == (gap <= MTFL_AGREEMENT)).all()
    # the same answers with the eyes pushed a third of the eye distance off: every face dropped
    eyes = mtfl_faces.points[:, INDEX["left_eye_center"]] - mtfl_faces.points[:, INDEX["right_eye_center"]]
    wrong = answers.copy()
    wrong[:, LABELLED] += np.linalg.norm(eyes, axis=-1)[:, None, None] * np.array([0.0, 0.6])
    assert not mtfl_agrees(wrong, mtfl_faces).any()
    unlabelled = mtfl_faces.subset(np.arange(2))
    unlabelled.mask = np.zeros_like(unlabelled.mask)  # no hand marks: nothing to agree with
    assert not mtfl_agrees(answers[:2], unlabelled).any()


def test_targets_mix_dlib_with_fkd_and_leave_out_disagreeing_mtfl_faces(
        faces: FaceSet, mtfl_faces: FaceSet, shipped_weights: Path, tmp_path: Path) -> None:
    both = FaceSet.concat([faces, mtfl_faces])
    dlib_only, known = taught_targets(both, [], tmp_path, with_mtfl=True)
    mixed, _ = taught_targets(both, [shipped_weights], tmp_path, with_mtfl=True, share=0.4)
    from fkd.model.artifact import Predictor

    fkd = Predictor(shipped_weights, runtime="torchscript", flip=True)(both.crops)
    assert np.allclose(mixed, 0.4 * dlib_only + 0.6 * fkd, atol=1e-3)
    n = len(faces)
    assert known[:n].all()  # every 300-W face is taught
    assert (known[n:] == mtfl_agrees(dlib_only[n:], mtfl_faces)).all()
    _, without = taught_targets(both, [], tmp_path, with_mtfl=False)
    assert without[:n].all() and not without[n:].any()
    _, mtfl_only = taught_targets(both, [], tmp_path, with_mtfl=True, with_labelled=False)
    assert not mtfl_only[:n].any() and (mtfl_only[n:] == known[n:]).all()


def test_the_stored_target_mirrors_and_moves_with_its_face(faces: FaceSet, teacher: DlibTeacher) -> None:
    """Augmentation takes the teacher's 15 through the same warp and mirror as the labels."""
    assert label_flip(30)[15:] == tuple(15 + i for i in label_flip(15))
    answers = teacher_answers(faces, None, teacher=teacher)
    plain = DeviceFaces.from_faceset(faces, torch.device("cpu"))
    taught = DeviceFaces.from_faceset(faces, torch.device("cpu"), taught=(faces.points, np.ones(len(faces), bool)))
    index = torch.arange(len(faces))
    cfg = AugmentConfig(rotate_deg=20, scale=0.1, shift_px=5, flip=0.5)
    _, p, _ = geometry(plain, index, cfg, torch.Generator().manual_seed(7))
    _, pt, mt = geometry(taught, index, cfg, torch.Generator().manual_seed(7))
    assert torch.allclose(pt[:, 15:], p, atol=1e-4) and torch.allclose(pt[:, :15], p, atol=1e-4)
    assert mt[:, 15:].all()
    mirrored = DeviceFaces.from_faceset(faces, torch.device("cpu"), taught=(answers, np.ones(len(faces), bool)))
    _, q, _ = geometry(mirrored, index, AugmentConfig(rotate_deg=0, scale=0, shift_px=0, flip=1.0),
                       torch.Generator().manual_seed(0))
    assert np.allclose(q[:, 15:].numpy(), mirror_points(answers, 96), atol=1e-3)


def test_the_stored_target_alone_moves_the_keypoints(faces: FaceSet, teacher: DlibTeacher) -> None:
    """With every label masked off, only the teacher's target gives a loss and a gradient."""
    from fkd.train.loop import train_step

    answers = teacher_answers(faces, None, teacher=teacher)
    dev = DeviceFaces.from_faceset(faces, torch.device("cpu"), taught=(answers, np.ones(len(faces), bool)))
    x, y, m = geometry(dev, torch.arange(8), AugmentConfig(flip=0.0), torch.Generator().manual_seed(1))
    m[:, :15] = False
    torch.manual_seed(0)
    student = KeypointNet(width=8)
    opt = torch.optim.SGD(student.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    cfg = TrainConfig(data=[], negatives=0.0, dlib_teacher=True)
    before = [p.detach().clone() for p in student.parameters()]
    losses = train_step(TrainView(student), student, opt, sched, None, (x, y, m, torch.ones(8)), cfg, None)
    assert float(losses[1]) == 0.0 and float(losses[0]) > 0.0  # no label loss, a teacher loss
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters()))


#: imports fkd and runs a console script in-process, then says whether dlib was ever imported
REPORT_DLIB = """
import atexit, sys
from importlib.metadata import entry_points
atexit.register(lambda: print("dlib imported:", "dlib" in sys.modules, file=sys.stderr))
import fkd
if len(sys.argv) > 1:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == sys.argv[1]]
    sys.argv = sys.argv[1:]
    script.load()()
"""


@pytest.mark.parametrize("command", [[], ["fkd-live", "--help"], ["fkd-predict", "PHOTO"], ["fkd-train", "--help"],
                                     ["fkd-eval", "PTS"]])
def test_the_light_paths_never_import_dlib(command: list[str], pts_folder: Path) -> None:
    args = [str(min(pts_folder.glob("*.jpg"))) if a == "PHOTO" else str(pts_folder) if a == "PTS" else a
            for a in command]
    done = subprocess.run([sys.executable, "-c", REPORT_DLIB, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "dlib imported: False", done.stderr


HIDE_DLIB = """
import sys
from importlib.metadata import entry_points
sys.modules["dlib"] = None  # as if the teacher extra were not installed
(script,) = [e for e in entry_points(group="console_scripts") if e.name == sys.argv[1]]
sys.argv = sys.argv[1:]
script.load()()
"""


def test_dlib_teacher_without_the_extra_names_it(pts_folder: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", HIDE_DLIB, "fkd-train", "--data", str(pts_folder), "--output",
                           str(tmp_path / "run"), "--dlib-teacher"], capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0] == ('error: --dlib-teacher needs the teacher extra (dlib not installed): '
                        'pip install "fkd[teacher]".')
    assert not (tmp_path / "run").exists()  # refused before anything was written
