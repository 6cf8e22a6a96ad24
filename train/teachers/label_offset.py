"""The labels' left-right offset that flip augmentation cannot teach, measured once training ends.

Why it exists: on 300-W, every trained fkd network places its points, on average, 0.15-0.7
crop px to the *left* of the labels, on training, validation and test faces alike, and hardly at
all above or below them. That is what a label convention that sits a fraction of a pixel to
the right of the image feature does to a network trained with mirrored faces: a mirrored
label sits that far to the *left* of its mirrored feature, the network sees both and can
learn neither, so it learns the feature. Nothing vertical is mirrored, so a vertical offset is
learned like any other. Flip averaging at inference does not remove it either: the mirrored
pass, mapped back, lands on the feature too.

The remedy costs nothing at inference: the mean x residual (label minus prediction) of each
keypoint over the training split's faces, measured with the finished network on unaugmented
crops, goes into the weights' metadata (``label_offset``), and ``fkd.model.artifact.Predictor``
adds it after any flip averaging. (Adding it inside the network would not survive flip
averaging: the mirrored pass would subtract it again.) Only training faces are used, so the
validation and test figures that include it stay honest. Measured effect in bench/RESULTS.md
("The labels' left-right offset"); ``python bench/label_offset.py`` measures it for any weights.
"""

from __future__ import annotations

import numpy as np

from fkd.model.metadata import LABEL_OFFSET


def measure(pred: np.ndarray, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(K,) mean of label x minus predicted x per keypoint over the faces that label it (0 where none do)."""
    dx = (np.asarray(points, np.float64) - np.asarray(pred, np.float64))[..., 0]
    m = np.asarray(mask, bool)
    counts = m.sum(0)
    return np.where(counts > 0, (dx * m).sum(0) / np.maximum(counts, 1), 0.0)


def metadata(offset: np.ndarray, faces: int, source: str) -> dict:
    """The ``label_offset`` metadata entry for ``offset``, measured on ``faces`` faces of ``source``."""
    if offset.shape not in ((15,), (68,)):
        raise ValueError(f"expected 15 or 68 x offsets, got shape {offset.shape}")
    return {LABEL_OFFSET: {"x_px": [round(float(v), 4) for v in offset], "faces": int(faces),
                           "measured_on": source,
                           "applied": "added to x after flip averaging (fkd.train.teachers.label_offset)"}}
