"""dlib's 68-point predictor as a teacher of another family (``fkd-train --dlib-teacher``).

fkd's own networks, used as teachers, make fkd's mistakes. dlib's predictor is an ensemble of
regression trees trained on all of 300-W's training photos, HELEN's included, so its errors
are not fkd's: on the validation faces the mean of its answer and fkd's beats both
(bench/RESULTS.md, "A teacher of another family"). It answers once per training face, on the
face's stored context crop, and the answer joins the face's labels, so augmentation moves and
mirrors it like them.

dlib is a training-time option only: ``pip install "fkd[teacher]"`` brings the ``dlib-bin``
wheel and its 68-point model from ``face-recognition-models``; nothing on the photo or live
path imports this module.

**The box.** dlib's predictor starts from a face box and is sensitive to where it sits (half
a pixel moved validation NME by 0.1 point). The box is placed on fkd's crop square by
``DLIB_BOX_SHIFT`` and ``DLIB_BOX_SIDE``, chosen by ``calibrate_box``: a grid search for the
placement with the lowest NME of dlib's answers on 400 of the 300-W training faces. dlib's own
HOG detector draws its boxes lower and larger (median shift 0.107 side, side 0.943; 2.8 % NME
there against 2.53 % at the chosen box), so its boxes are not what suits these crops.

**The cache.** Each answer is stored under a hash of the face's context crop and affine, the
model file and the box (``answer_key``), like the crop caches: a changed byte asks again, an
unchanged face is never asked twice.
"""

from __future__ import annotations

import hashlib
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from fkd.model.errors import FkdError
from fkd.model.files import atomic_path
from fkd.model.paths import shown
from fkd.model.schema import NUM_KEYPOINTS, ibug68_to_kaggle15
from fkd.train.faceset import CONTEXT_SIZE, FaceSet

TEACHER_INSTALL = 'pip install "fkd[teacher]"'
#: import names of the teacher extra (pyproject.toml's ``teacher`` list)
TEACHER_PACKAGES = ("dlib", "face_recognition_models")
MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
#: (x, y) of the box's centre from the crop square's, in square sides, and its side over the
#: square's: ``calibrate_box``'s choice (bench/dlib_teacher.py --calibrate reruns it)
DLIB_BOX_SHIFT = (0.0, 0.05)
DLIB_BOX_SIDE = 0.84
#: the placements ``calibrate_box`` tries: y shifts and sides (x is centred by the mirror symmetry)
BOX_GRID = ((0.0, 0.02, 0.04, 0.06, 0.08, 0.1), (0.78, 0.82, 0.86, 0.9, 0.94))
CACHE_VERSION = "dlib-teacher-v1"


def model_path() -> Path:
    """The 68-point model file inside face-recognition-models, found without importing it (its
    ``__init__`` needs pkg_resources, which new setuptools no longer has)."""
    missing = [name for name in TEACHER_PACKAGES if find_spec(name) is None]
    if missing:
        raise FkdError(f"--dlib-teacher needs the teacher extra ({', '.join(missing)} not installed): "
                       f"{TEACHER_INSTALL}.")
    spec = find_spec("face_recognition_models")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "models" / MODEL_FILE
        if path.is_file():
            return path
    raise FkdError(f"--dlib-teacher: face-recognition-models is installed but holds no {MODEL_FILE}; "
                   f"reinstall it: {TEACHER_INSTALL}.")


def context_box(shift: tuple[float, float] = DLIB_BOX_SHIFT, side: float = DLIB_BOX_SIDE) -> tuple[int, ...]:
    """(left, top, right, bottom), dlib's inclusive pixel box, in context-crop pixels: the crop
    square is the context's middle 1/1.5, and the box is placed on it by the calibration."""
    square = CONTEXT_SIZE / 1.5
    centre = (CONTEXT_SIZE - 1) / 2
    cx, cy = centre + shift[0] * square, centre + shift[1] * square
    half = side * square / 2
    return (int(round(cx - half + 0.5)), int(round(cy - half + 0.5)),
            int(round(cx + half + 0.5)) - 1, int(round(cy + half + 0.5)) - 1)


class DlibTeacher:
    """dlib's 68-point shape predictor, answering in a face's crop pixels with fkd's 15 points."""

    def __init__(self) -> None:
        path = model_path()
        import dlib  # the teacher extra; checked above

        self.dlib: Any = dlib
        self.predictor = dlib.shape_predictor(str(path))
        self.model_digest = hashlib.sha1(path.read_bytes()).hexdigest()[:16]
        self.box = dlib.rectangle(*context_box())

    def points68(self, context: np.ndarray, to_crop: np.ndarray) -> np.ndarray:
        """(68, 2) iBUG points in crop pixels for one uint8 context crop and its 2x3 affine."""
        shape = self.predictor(np.ascontiguousarray(context), self.box)
        p = np.array([(shape.part(k).x, shape.part(k).y) for k in range(68)], np.float64)
        return p @ np.asarray(to_crop, np.float64)[:, :2].T + np.asarray(to_crop, np.float64)[:, 2]

    def answer(self, context: np.ndarray, to_crop: np.ndarray) -> np.ndarray:
        """(15, 2) Kaggle keypoints in crop pixels, by the same 68 -> 15 mapping as the labels."""
        return ibug68_to_kaggle15(self.points68(context, to_crop)).astype(np.float32)


def answer_key(context: np.ndarray, to_crop: np.ndarray, salt: bytes) -> str:
    """The cache key of one face's answer: its pixels, its affine, the model and the box."""
    h = hashlib.sha1(salt)
    h.update(np.ascontiguousarray(context).tobytes())
    h.update(np.asarray(to_crop, np.float32).tobytes())
    return h.hexdigest()[:20]


def teacher_answers(faces: FaceSet, cache_dir: Path | None, progress=None,
                    teacher: DlibTeacher | None = None) -> np.ndarray:
    """(N, 15, 2) dlib's keypoints for every face, in crop pixels; answers already in
    ``cache_dir/dlib-answers.npz`` are reused and new ones added to it (written atomically)."""
    teacher = teacher or DlibTeacher()
    salt = repr((CACHE_VERSION, teacher.model_digest, context_box())).encode()
    keys = [answer_key(c, a, salt) for c, a in zip(faces.context, faces.context_to_crop)]
    cache = Path(cache_dir) / "dlib-answers.npz" if cache_dir else None
    known = read_cache(cache) if cache else {}
    todo = [i for i, k in enumerate(keys) if k not in known]
    task = progress.add_task("asking dlib", total=len(todo), info="") if progress and todo else None
    for n, i in enumerate(todo):
        known[keys[i]] = teacher.answer(faces.context[i], faces.context_to_crop[i])
        if task is not None and (n % 64 == 63 or n == len(todo) - 1):
            progress.update(task, completed=n + 1)
    if cache is not None and todo:
        write_cache(cache, known)
    if not keys:
        return np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
    return np.stack([known[k] for k in keys]).astype(np.float32)


def read_cache(path: Path) -> dict[str, np.ndarray]:
    """The cached answers by key; a missing or damaged file is an empty cache (asked again)."""
    try:
        with np.load(path) as z:
            return dict(zip(z["keys"].tolist(), z["answers"]))
    except Exception:
        return {}


def write_cache(path: Path, answers: dict[str, np.ndarray]) -> None:
    """All answers in one file, replaced whole; a read-only cache folder costs time next run, not this one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=np.array(list(answers)), answers=np.stack(list(answers.values())))
    except OSError as e:
        print(f"warning: cannot write the cache {shown(path.parent)} ({e.strerror}); going on without it.",
              file=sys.stderr)


def calibrate_box(faces: FaceSet, teacher: DlibTeacher | None = None) -> list[tuple[float, float, float]]:
    """(NME, y shift, side) of dlib's answers on ``faces`` (labelled 15-point training faces) for
    every placement of ``BOX_GRID``, best first: what ``DLIB_BOX_SHIFT``/``DLIB_BOX_SIDE`` hold."""
    from fkd.train.metrics import keypoint_metrics

    teacher = teacher or DlibTeacher()
    rows = []
    for shift_y in BOX_GRID[0]:
        for side in BOX_GRID[1]:
            teacher.box = teacher.dlib.rectangle(*context_box((0.0, shift_y), side))
            answers = np.stack([teacher.answer(c, a) for c, a in zip(faces.context, faces.context_to_crop)])
            rows.append((keypoint_metrics(answers, faces.points, faces.mask)["nme"], shift_y, side))
    teacher.box = teacher.dlib.rectangle(*context_box())
    return sorted(rows)
