"""dlib's 68-point predictor as fkd-train's teacher (issue 27): how good is the teacher, and its mix?

    python bench/dlib_teacher.py                 # the teacher's table and the MTFL filter
    python bench/dlib_teacher.py --calibrate     # also the box grid search (train/teachers/dlib_teacher.py)

Every figure is on the stored crops of ``fkd-train``'s own splits (300-W faces through YuNet and
the crop convention; the validation and untouched test ids of train/data/faceset.py), so it scores
the teacher's target, not the photo path: bench/photo_nme.py scores students end to end.

- dlib alone: ``DlibTeacher`` at the calibrated box, on 300-W's photos (``--context``: on each
  face's 96-px context crop, as MTFL's faces always are).
- fkd alone: the given weights' flip-averaged answer on the crop (what fkd-predict's first look
  gives for that crop), label offset included.
- the mix at several of dlib's shares (train/teachers/teaching.py takes ``DLIB_SHARE``).

dlib was trained on all 300-W training photos, the shared ones included: its validation and
test figures flatter it. MTFL's faces (5 hand marks, another marking convention) are not in
its training set; the MTFL rows use MTFL's eye-centre NME (train/data/mtfl.py).

The training row shows what a student can learn from the mix on the faces it trains on: both
teachers have seen those faces, so there the mix says little that the labels do not.

The last table is the MTFL agreement filter: the percentiles of dlib's disagreement with the
hand marks (mean over MTFL's 5 points, over the eye-centre distance) on 300-W's faces and on
MTFL's, and the share of MTFL's training faces that ``MTFL_AGREEMENT`` keeps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fkd.train.data.load import load_sources
from fkd.train.data.mtfl import eye_nme
from fkd.train.data.splits import Splits
from fkd.train.evaluation.metrics import keypoint_metrics
from fkd.train.teachers.dlib_teacher import calibrate_box, labelled_photos, teacher_answers
from fkd.train.teachers.teaching import DLIB_SHARE, MTFL_AGREEMENT, disagreement, fkd_answers

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHARES = (0.3, 0.4, 0.5, 0.6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[1] / "weights" / "fkd.pt",
                    help="fkd's half of the mix (TorchScript)")
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    ap.add_argument("--calibrate", action="store_true", help="rerun the box grid search on 400 training faces")
    ap.add_argument("--context", action="store_true", help="ask dlib about 300-W's faces on their context crops "
                    "instead of their photos")
    args = ap.parse_args()
    faces = load_sources([SHARED / "300w", SHARED / "mtfl"], args.cache_dir)
    train, val, test = faces.split()
    mtfl = ~Splits.primary(faces)
    photos = labelled_photos([SHARED / "300w"])
    if args.calibrate:
        sample = faces.subset(train[~mtfl[train]][::4][:400])
        print("| dlib NME % on 400 training faces' photos | box y shift (sides) | box side |\n|---|---|---|")
        for nme, shift_y, side in calibrate_box(sample, photos)[:6]:
            print(f"| {100 * nme:.3f} | {shift_y:g} | {side:g} |")
    dlib = teacher_answers(faces, args.cache_dir, photos=photos)
    if args.context:  # every face asked of its 96-px context crop, as MTFL's are
        dlib = teacher_answers(faces, args.cache_dir)
    print(f"\n| faces | n | dlib alone | fkd alone ({args.weights.name}, flip) | "
          + " | ".join(f"mix {s:g} dlib" for s in SHARES) + " |")
    print("|---|---|---|---|" + "---|" * len(SHARES))
    for name, index, metric in (("300-W training", train[~mtfl[train]], keypoint_metrics),
                                ("300-W validation", val[~mtfl[val]], keypoint_metrics),
                                ("300-W test", test[~mtfl[test]], keypoint_metrics),
                                ("MTFL validation (eye NME)", val[mtfl[val]], eye_nme),
                                ("MTFL test (eye NME)", test[mtfl[test]], eye_nme)):
        part = faces.subset(index)
        fkd = fkd_answers([args.weights], part)
        answers = [dlib[index], fkd] + [s * dlib[index] + (1 - s) * fkd for s in SHARES]
        cells = [f"{100 * metric(a, part.points, part.mask)['nme']:.3f}" for a in answers]
        print(f"| {name} | {len(index)} | " + " | ".join(cells) + " |")
    print(f"\n(train/teachers/teaching.py mixes {DLIB_SHARE:g} of dlib)")
    gap = disagreement(dlib, faces)
    print("\n| dlib against the hand marks at MTFL's 5 points | faces | p50 | p90 | p95 | p99 |")
    print("|---|---|---|---|---|---|")
    for name, index in (("300-W training", train[~mtfl[train]]), ("300-W validation", val[~mtfl[val]]),
                        ("MTFL training", train[mtfl[train]]), ("MTFL validation", val[mtfl[val]])):
        p = np.percentile(gap[index], [50, 90, 95, 99])
        print(f"| {name} | {len(index)} | " + " | ".join(f"{v:.3f}" for v in p) + " |")
    kept = gap[train[mtfl[train]]] <= MTFL_AGREEMENT
    print(f"\nMTFL_AGREEMENT {MTFL_AGREEMENT:g} keeps {int(kept.sum())} of {len(kept)} MTFL training faces "
          f"({100 * kept.mean():.1f} %)")


if __name__ == "__main__":
    main()
