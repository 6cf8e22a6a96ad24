"""fkd: 15 Kaggle facial keypoints, trained and live.

The code lives in the top-level folders model/, train/ and realtime/ (and the shipped
weights in weights/); this folder links to each of them, so ``fkd.model`` (the contract),
``fkd.train`` and ``fkd.realtime`` resolve the same way in a checkout, in an editable
install and in an installed wheel.

The Python API (``fkd.__all__``), documented in fkd.realtime.api::

    marker = fkd.Landmarker()                  # load the shipped (or given) weights once
    faces = marker.landmarks(image)            # numpy BGR or grey -> [FaceLandmarks(id, box, keypoints, score)]
    faces = marker.landmarks(image, boxes=[(x, y, w, h)])   # your own face boxes
    with marker.tracker(fps=30) as tracker:    # video frames, in order
        faces = tracker.update(frame)

Its names load on first use (module ``__getattr__``), so ``import fkd`` stays cheap and
imports neither OpenCV's pipelines nor onnxruntime, and never torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that holds it
_LAZY = {
    "Landmarker": "fkd.realtime.api",
    "FaceLandmarks": "fkd.realtime.api",
    "FaceTracker": "fkd.realtime.api",
    "KEYPOINTS": "fkd.model.schema",
    "FkdError": "fkd.model.errors",
    "UsageError": "fkd.model.errors",
}

__all__ = ["KEYPOINTS", "FaceLandmarks", "FaceTracker", "FkdError", "Landmarker", "UsageError", "__version__"]

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads these
    from fkd.model.errors import FkdError, UsageError
    from fkd.model.schema import KEYPOINTS
    from fkd.realtime.api import FaceLandmarks, FaceTracker, Landmarker


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'fkd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
