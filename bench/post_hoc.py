"""Two accuracy levers that need no training: a statistical shape prior on the answers, and
weight soups of runs that continued one another.

    python bench/post_hoc.py --shape-prior
    python bench/post_hoc.py --soup runs/final-distill/fkd.pt runs/final-ensemble/fkd.pt runs/final-three/fkd.pt
    python bench/post_hoc.py --teachers weights/fkd.pt runs/wide48/fkd.pt

**Shape prior.** The 15 points of a face are far from independent, so a point the network
misplaces (a brow under hair, a lip behind a hand) might be pulled back by the others. The
training split's labels, aligned by similarity (Procrustes), give a mean shape and its
principal modes; each answer is mapped into that frame, its mode coefficients shrunk by
prior variance / (prior variance + noise) as a Gaussian posterior would, mapped back, and
blended with the raw answer. The number of modes, the noise and the blend are searched on the
validation split; the test split is printed beside each row to report, not to choose.

**Soup.** Runs that continue one another (``--init``) stay in one basin, so the plain average
of their weights (batch-norm statistics included) is itself a network; it costs nothing at
inference, unlike averaging their answers. Each run alone and the soups of every suffix and
of adjacent pairs are scored, float32 network without the label offset, as levers_table does.

**Teachers.** What ``--teacher`` would hand a student: each weights file's flip-averaged
answer, and the mean of them all, exactly as ``fkd.train.teachers.distill.teacher_keypoints`` computes
it during training (float32, no label offset). A student rarely ends better than its target,
so this says, in a minute, whether a distillation run is worth an hour.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from fkd.model.artifact import Predictor
from fkd.train.data.load import load_sources
from fkd.train.evaluation.evaluate import predict_crops
from fkd.train.evaluation.metrics import keypoint_metrics
from fkd.train.teachers.distill import load_teachers, teacher_keypoints

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "300w"


def nme(points: np.ndarray, faces, index: np.ndarray) -> float:
    return 100 * keypoint_metrics(points.astype(np.float32), faces.points[index], faces.mask[index])["nme"]


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The similarity that maps (K, 2) ``src`` onto ``dst`` by least squares, as (R, t_src, t_dst):
    p -> (p - t_src) @ R + t_dst."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    a = (s * d).sum() / (s * s).sum()
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / (s * s).sum()
    return np.array([[a, b], [-b, a]]), ms, md


class ShapeModel:
    """Mean shape and principal modes of similarity-aligned label sets (N, K, 2)."""

    def __init__(self, shapes: np.ndarray) -> None:
        mean = shapes.mean(0) - shapes.mean((0, 1))
        for _ in range(5):  # generalised Procrustes: align all to the mean, re-average
            aligned = np.stack([(y - t) @ r + m for y in shapes for r, t, m in [fit_similarity(y, mean)]])
            mean = aligned.mean(0) - aligned.mean((0, 1))
        self.mean = mean
        _, s, vt = np.linalg.svd((aligned - mean).reshape(len(shapes), -1), full_matrices=False)
        self.modes, self.variance = vt, s ** 2 / len(shapes)

    def regularise(self, shapes: np.ndarray, k: int, noise_px2: float) -> np.ndarray:
        """Each (K, 2) shape's Gaussian-posterior mean under the first ``k`` modes."""
        out = np.empty_like(shapes)
        v, lam = self.modes[:k], self.variance[:k]
        for i, q in enumerate(shapes):
            r, _, m = fit_similarity(self.mean, q)  # model frame (centred) -> this answer's frame
            scale2 = r[0, 0] ** 2 + r[0, 1] ** 2
            x = ((q - m) @ np.linalg.inv(r)).reshape(-1) - self.mean.reshape(-1)
            b = (v @ x) * lam / (lam + noise_px2 / scale2)
            out[i] = (self.mean.reshape(-1) + b @ v).reshape(-1, 2) @ r + m
        return out


def shape_prior(faces, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> None:
    predictor = Predictor(None)  # the shipped int8 twin with its label offset, as fkd-predict runs it
    answers = {name: predict_crops(predictor, faces.crops[i]).astype(np.float64)
               for name, i in (("val", val), ("test", test))}
    labelled = train[faces.mask[train].all(1)]
    model = ShapeModel(faces.points[labelled].astype(np.float64))
    print(f"shape model from {len(labelled)} fully labelled training faces; shipped weights as they are: "
          f"validation {nme(answers['val'], faces, val):.3f} %, test {nme(answers['test'], faces, test):.3f} %")
    rows = []
    for k, noise in itertools.product((6, 10, 14, 18, 22, 26), (0.0, 0.5, 1.0, 2.0)):
        fitted = {name: model.regularise(a, k, noise) for name, a in answers.items()}
        for blend in (0.3, 0.5, 1.0):
            mixed = {name: blend * fitted[name] + (1 - blend) * answers[name] for name in answers}
            rows.append((nme(mixed["val"], faces, val), nme(mixed["test"], faces, test), k, noise, blend))
    rows.sort()
    print(f"{'modes':>5s} {'noise px2':>9s} {'blend':>5s} {'validation':>10s} {'test':>7s}   (best five on validation)")
    for v, t, k, noise, blend in rows[:5]:
        print(f"{k:5d} {noise:9.1f} {blend:5.1f} {v:9.3f} % {t:6.3f} %")


def soups(paths: list[Path], faces, val: np.ndarray, test: np.ndarray) -> None:
    nets = [torch.jit.load(str(p), map_location="cpu").eval() for p in paths]
    states = [{k: v.clone() for k, v in n.state_dict().items()} for n in nets]

    def score(net: torch.nn.Module) -> tuple[float, float]:
        with torch.no_grad():
            return tuple(nme(net(torch.from_numpy(faces.crops[i]).float()[:, None])[0].numpy(), faces, i)
                         for i in (val, test))  # type: ignore[return-value]

    for p, n in zip(paths, nets):
        v, t = score(n)
        print(f"{p.parent.name:38s} validation {v:.3f} %, test {t:.3f} %")
    groups = [list(range(i, len(paths))) for i in range(len(paths) - 1)] + \
             [[i, i + 1] for i in range(len(paths) - 2)]
    soup = nets[-1]  # scored above; its own weights are kept in ``states``, so it can hold each soup
    for group in groups:
        mean = {k: torch.stack([states[g][k].float() for g in group]).mean(0).to(v.dtype) if v.is_floating_point()
                else v for k, v in states[group[-1]].items()}
        soup.load_state_dict(mean)
        v, t = score(soup)
        name = "soup of " + " + ".join(paths[g].parent.name for g in group)
        print(f"{name:38s} validation {v:.3f} %, test {t:.3f} %")


def teachers(paths: list[Path], faces, val: np.ndarray, test: np.ndarray) -> None:
    splits = (val, test)
    crops = [torch.from_numpy(faces.crops[i]).float()[:, None] for i in splits]
    # each teacher runs once; teacher_keypoints' mean over several is the mean of these answers
    nets = load_teachers(paths, torch.device("cpu"))
    answers = [[teacher_keypoints([net], x).numpy() for x in crops] for net in nets]
    for p, own in zip(paths, answers):
        v, t = (nme(a, faces, i) for a, i in zip(own, splits))
        print(f"{p!s:38s} flip-averaged: validation {v:.3f} %, test {t:.3f} %")
    if len(answers) > 1:
        v, t = (nme(np.mean([own[k] for own in answers], axis=0), faces, i) for k, i in enumerate(splits))
        print(f"{'their mean (the distillation target)':38s} validation {v:.3f} %, test {t:.3f} %")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape-prior", action="store_true")
    ap.add_argument("--soup", type=Path, nargs="+", default=[], help="weights files, parent run first")
    ap.add_argument("--teachers", type=Path, nargs="+", default=[], help="weights files to score as --teacher")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    faces = load_sources([args.data], Path(".cache"))
    train, val, test = faces.split()
    if args.shape_prior:
        shape_prior(faces, train, val, test)
    if args.soup:
        soups(args.soup, faces, val, test)
    if args.teachers:
        teachers(args.teachers, faces, val, test)


if __name__ == "__main__":
    main()
