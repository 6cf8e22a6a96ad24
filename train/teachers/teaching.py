"""The teacher's target for each training face (``fkd-train --dlib-teacher``): dlib's answer
mixed with fkd's, and which faces get it.

**The mix.** The target is ``DLIB_SHARE`` of dlib's keypoints plus the rest of fkd's
flip-averaged ones, as ``fkd-predict`` gives them for the stored crop (label offset included:
both halves then follow the labels' convention). On the validation faces the plain mean
measured best: 2.25 % NME against fkd's 2.50 % and dlib's 2.45 % (0.4 of dlib 2.26 %, 0.6
2.25 %; bench/dlib_teacher.py). Those faces flatter dlib, which was trained on their photos,
so no more than half is given to it. Without ``--teacher`` there is no fkd half and dlib's
answer is the target alone.

**Faces nobody labelled in full.** MTFL's faces carry 5 hand-marked points; the mix gives them
all 15. Where dlib disagrees with the 5 hand marks by more than ``MTFL_AGREEMENT`` (mean point
error over the eye-centre distance), dlib is taken to have failed on that face, and the face
keeps its 5 labels without a teacher's target. The threshold is twice the median disagreement
on MTFL's training faces (0.053): MTFL marks its points by another convention than 300-W (there
the median is 0.026), so a typical MTFL face disagrees by that much without dlib failing. It
drops 7 % of them (bench/dlib_teacher.py prints the percentiles).

The shared clips would be the other source of unlabelled faces, but every one of them is
scored by a benchmark (composites, crowd_faces, live_fps), so none is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fkd.train.data.faceset import FaceSet
from fkd.train.data.mtfl import LABELLED, eye_errors
from fkd.train.data.splits import Splits
from fkd.train.teachers.dlib_teacher import PhotoJob, teacher_answers

#: dlib's weight in the teacher's mix; fkd's flip-averaged answer has the rest
DLIB_SHARE = 0.5
#: the most mean 5-point disagreement, over the eye-centre distance, at which an MTFL face takes
#: the teacher's target
MTFL_AGREEMENT = 0.10


def disagreement(answers: np.ndarray, faces: FaceSet) -> np.ndarray:
    """(N,) per face: the mean distance from ``answers`` to the labels at MTFL's 5 points, over
    the labelled eye centres' distance (NaN where a face lacks them)."""
    five = np.zeros_like(faces.mask)
    five[:, LABELLED] = faces.mask[:, LABELLED]
    _, _, per_face, ok = eye_errors(answers, faces.points, five)
    return np.where(ok & five[:, LABELLED].all(1), per_face, np.nan)


def mtfl_agrees(answers: np.ndarray, faces: FaceSet, threshold: float = MTFL_AGREEMENT) -> np.ndarray:
    """(N,) True for the faces whose teacher answer stays within ``threshold`` of their 5 hand marks."""
    with np.errstate(invalid="ignore"):
        return disagreement(answers, faces) <= threshold


def fkd_answers(weights: Sequence[Path], faces: FaceSet) -> np.ndarray:
    """(N, 15, 2) the mean of each fkd teacher's flip-averaged keypoints on the stored crops."""
    from fkd.model.artifact import Predictor
    from fkd.train.evaluation.evaluate import predict_crops

    answers = [predict_crops(Predictor(Path(path), runtime="torchscript", flip=True), faces.crops) for path in weights]
    return np.stack(answers).mean(0, dtype=np.float64).astype(np.float32)


def taught_targets(faces: FaceSet, weights: Sequence[Path], cache_dir: Path | None, with_mtfl: bool,
                   share: float = DLIB_SHARE, progress=None, photos: Mapping[str, PhotoJob] | None = None,
                   with_labelled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """((N, 15, 2) targets, (N,) which faces take them) for training faces: the mix for every
    15-point face where ``with_labelled``, and for MTFL's where ``with_mtfl`` and dlib agrees
    with their hand marks. ``photos`` (``labelled_photos``) lets dlib read 300-W's faces at
    their photos' resolution."""
    answers = teacher_answers(faces, cache_dir, progress, photos=photos)
    target = share * answers + (1 - share) * fkd_answers(weights, faces) if weights else answers
    mtfl = ~Splits.primary(faces)
    known = (with_labelled & ~mtfl) | (with_mtfl & mtfl & mtfl_agrees(answers, faces))
    return target.astype(np.float32), known
