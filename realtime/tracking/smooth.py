"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorised over keypoints.

A low-pass filter whose cutoff rises with speed: a still face gets heavy smoothing (no
jitter), a moving one light smoothing (no lag). Speed is measured in face sides per second,
so one set of parameters suits small and large faces alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    """Tuned in bench/jitter.py on the shared clips; see bench/RESULTS.md for the figures."""

    min_cutoff: float = 0.5  # Hz: cutoff at rest; lower = less jitter, more lag when starting to move
    beta: float = 4.0  # Hz per (face side / s): how fast the cutoff opens with speed
    d_cutoff: float = 1.0  # Hz: cutoff of the speed estimate itself


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuro:
    """Filters a stream of (K, 2) point arrays, one call per frame."""

    def __init__(self, params: OneEuroParams = OneEuroParams()) -> None:
        self.params = params
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def reset(self) -> None:
        self._x = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """The filtered points at time ``t`` (seconds); ``scale`` is the face side in pixels."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros(x.shape[:-1]), t
            return x.copy()
        p = self.params
        dt = t - self._t
        speed = np.linalg.norm(x - self._x, axis=-1) / dt / max(scale, 1e-6)
        self._dx = self._dx + _alpha(p.d_cutoff, dt) * (speed - self._dx)
        a = np.asarray(_alpha(p.min_cutoff + p.beta * self._dx, dt))[..., None]
        self._x = self._x + a * (x - self._x)
        self._t = t
        return self._x.copy()
