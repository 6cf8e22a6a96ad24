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

**Where it looks.** A 300-W face is asked of its whole photo, found again from the face's id
and accepted only where the square found again cuts exactly the stored crop: at the photo's
resolution dlib's validation NME is 2.47 %, on the 96-px context crop 2.63 %. MTFL's images
are small crops already, so their faces are asked of the context crop.

**The box.** dlib's predictor starts from a face box and is sensitive to where it sits (half
a pixel moved validation NME by 0.1 point on the context crops). The box is placed on fkd's
crop square by ``DLIB_BOX_SHIFT`` and ``DLIB_BOX_SIDE``, chosen by ``calibrate_box``: a grid
search for the placement with the lowest NME of dlib's answers on 400 of the 300-W training
faces' photos (2.33 % there; the context crops' optimum is next to it, 0.05 and 0.84). dlib's
own HOG detector draws its boxes lower and larger (median shift 0.107 side, side 0.943, where
dlib scored 2.8 % on the context crops), so its boxes are not what suits these crops.

**The cache.** Each answer is stored under a hash of the face's context crop and affine, the
model file and the box (``answer_key``), like the crop caches: a changed byte asks again, an
unchanged face is never asked twice.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from fkd.model.crop import CROP_SIZE, Square, to_crop
from fkd.model.errors import FkdError
from fkd.model.extras import TEACHER_INSTALL, require_teacher_extra
from fkd.model.io.files import atomic_path
from fkd.model.io.paths import shown
from fkd.model.schema import NUM_KEYPOINTS, ibug68_to_kaggle15
from fkd.train.data.faceset import FaceSet

MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
#: (x, y) of the box's centre from the crop square's, in square sides, and its side over the
#: square's: ``calibrate_box``'s choice (bench/dlib_teacher.py --calibrate reruns it)
DLIB_BOX_SHIFT = (0.0, 0.04)
DLIB_BOX_SIDE = 0.86
#: the placements ``calibrate_box`` tries: y shifts and sides (x is centred by the mirror symmetry)
BOX_GRID = ((0.0, 0.02, 0.04, 0.06, 0.08, 0.1), (0.78, 0.82, 0.86, 0.9, 0.94))
CACHE_VERSION = "dlib-teacher-v1"


def model_path() -> Path:
    """The 68-point model file inside face-recognition-models, found without importing it (its
    ``__init__`` needs pkg_resources, which new setuptools no longer has)."""
    require_teacher_extra()
    spec = find_spec("face_recognition_models")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "models" / MODEL_FILE
        if path.is_file():
            return path
    raise FkdError(f"--dlib-teacher: face-recognition-models is installed but holds no {MODEL_FILE}; "
                   f"reinstall it: {TEACHER_INSTALL}.")


def placed_box(x0: float, y0: float, side: float, shift: tuple[float, float] = DLIB_BOX_SHIFT,
               box_side: float = DLIB_BOX_SIDE) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), dlib's inclusive pixel box, for a crop square that covers
    [x0, x0 + side) x [y0, y0 + side) of an image (pixel edges), placed on it by the calibration."""
    cx, cy = x0 + (0.5 + shift[0]) * side, y0 + (0.5 + shift[1]) * side
    half = box_side * side / 2
    return (int(round(cx - half)), int(round(cy - half)), int(round(cx + half)) - 1, int(round(cy + half)) - 1)


def square_in_context(to_crop: np.ndarray) -> tuple[float, float, float]:
    """(x0, y0, side) of the crop square in its context crop's pixels, from the 2x3 context ->
    crop affine (pixel centres: crop = a * context + b)."""
    a = float(to_crop[0, 0])
    return (-(float(to_crop[0, 2]) + 0.5 - 0.5 * a) / a, -(float(to_crop[1, 2]) + 0.5 - 0.5 * a) / a, CROP_SIZE / a)


class DlibTeacher:
    """dlib's 68-point shape predictor, answering in a face's crop pixels with fkd's 15 points."""

    def __init__(self) -> None:
        path = model_path()
        import dlib  # the teacher extra; checked above

        self.dlib: Any = dlib
        self.predictor = dlib.shape_predictor(str(path))
        self.model_digest = hashlib.sha1(path.read_bytes()).hexdigest()[:16]
        self.shift, self.side = DLIB_BOX_SHIFT, DLIB_BOX_SIDE

    def _points(self, image: np.ndarray, x0: float, y0: float, side: float) -> np.ndarray:
        box = self.dlib.rectangle(*placed_box(x0, y0, side, self.shift, self.side))
        shape = self.predictor(np.ascontiguousarray(image), box)
        return np.array([(shape.part(k).x, shape.part(k).y) for k in range(68)], np.float64)

    def points68(self, context: np.ndarray, to_crop: np.ndarray) -> np.ndarray:
        """(68, 2) iBUG points in crop pixels for one uint8 context crop and its 2x3 affine."""
        affine = np.asarray(to_crop, np.float64)
        return self._points(context, *square_in_context(affine)) @ affine[:, :2].T + affine[:, 2]

    def answer(self, context: np.ndarray, to_crop: np.ndarray) -> np.ndarray:
        """(15, 2) Kaggle keypoints in crop pixels, by the same 68 -> 15 mapping as the labels."""
        return ibug68_to_kaggle15(self.points68(context, to_crop)).astype(np.float32)

    def answer_in_photo(self, gray: np.ndarray, square: Square) -> np.ndarray:
        """(15, 2) keypoints in the crop pixels of ``square``, asked of the whole photo: at its full
        resolution dlib does better than on the 96-px context crop (bench/dlib_teacher.py)."""
        points = self._points(gray, square.x0, square.y0, square.side)
        return to_crop(ibug68_to_kaggle15(points), square).astype(np.float32)


def answer_key(context: np.ndarray, to_crop: np.ndarray, salt: bytes) -> str:
    """The cache key of one face's answer: its pixels, its affine, the model and the box."""
    h = hashlib.sha1(salt)
    h.update(np.ascontiguousarray(context).tobytes())
    h.update(np.asarray(to_crop, np.float32).tobytes())
    return h.hexdigest()[:20]


#: a 300-W face's photo: (image, .pts file, its folder), what ``train.pts.find_labelled_face`` takes
PhotoJob = tuple[Path, Path, Path]


def labelled_photos(paths: list[Path]) -> dict[str, PhotoJob]:
    """Face id -> photo job for every ``.pts`` photo among fkd-train's --data sources."""
    from fkd.train.data.load import expand
    from fkd.train.data.pts import face_id, find_pairs

    return {face_id(folder, img): (img, pts, folder)
            for kind, folder in expand(paths) if kind == "pts" for img, pts in find_pairs(folder)}


def photo_square(job: PhotoJob, crop: np.ndarray) -> tuple[np.ndarray, Square] | None:
    """The grey photo and the crop square a stored face was cut with: found again the way
    ``train.pts`` found it, and accepted only if it cuts exactly the stored crop."""
    from fkd.model.crop import crop_face
    from fkd.train.data.pts import find_labelled_face

    _, _, gray, square, _ = find_labelled_face(job)  # one decode, the square as training cut it
    if gray is None or square is None or not np.array_equal(crop_face(gray, square), crop):
        return None
    return gray, square


def teacher_answers(faces: FaceSet, cache_dir: Path | None, progress=None, teacher: DlibTeacher | None = None,
                    photos: Mapping[str, PhotoJob] | None = None) -> np.ndarray:
    """(N, 15, 2) dlib's keypoints for every face, in crop pixels: asked of the whole photo for
    faces in ``photos`` (300-W's, by id), of the context crop for the others (MTFL's small
    images) or where the photo no longer gives the stored crop. Answers already in
    ``cache_dir/dlib-answers.npz`` are reused and new ones added to it (written atomically)."""
    teacher = teacher or DlibTeacher()
    photos = photos or {}
    salt = repr((CACHE_VERSION, teacher.model_digest, teacher.shift, teacher.side)).encode()
    keys = [answer_key(c, a, salt + (b"photo" if i in photos else b"")) for c, a, i in
            zip(faces.context, faces.context_to_crop, faces.ids)]
    cache = Path(cache_dir) / "dlib-answers.npz" if cache_dir else None
    known = read_cache(cache) if cache else {}
    todo = [i for i, k in enumerate(keys) if k not in known]
    task = progress.add_task("asking dlib", total=len(todo), info="") if progress and todo else None
    for n, i in enumerate(todo):
        found = photo_square(photos[faces.ids[i]], faces.crops[i]) if faces.ids[i] in photos else None
        known[keys[i]] = teacher.answer_in_photo(*found) if found is not None else \
            teacher.answer(faces.context[i], faces.context_to_crop[i])
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


def calibrate_box(faces: FaceSet, photos: Mapping[str, PhotoJob],
                  teacher: DlibTeacher | None = None) -> list[tuple[float, float, float]]:
    """(NME, y shift, side) of dlib's answers on ``faces`` (labelled 300-W training faces, asked
    of their photos) for every placement of ``BOX_GRID``, best first: what ``DLIB_BOX_SHIFT``
    and ``DLIB_BOX_SIDE`` hold."""
    from fkd.train.evaluation.metrics import keypoint_metrics

    teacher = teacher or DlibTeacher()
    found = [(i, photo_square(photos[name], faces.crops[i])) for i, name in enumerate(faces.ids) if name in photos]
    index = np.array([i for i, f in found if f is not None])
    rows = []
    for shift_y in BOX_GRID[0]:
        for side in BOX_GRID[1]:
            teacher.shift, teacher.side = (0.0, shift_y), side
            answers = np.stack([teacher.answer_in_photo(*f) for _, f in found if f is not None])
            rows.append((keypoint_metrics(answers, faces.points[index], faces.mask[index])["nme"], shift_y, side))
    teacher.shift, teacher.side = DLIB_BOX_SHIFT, DLIB_BOX_SIDE
    return sorted(rows)
