"""The One Euro filter with fkd-live's default parameters, at 30 fps on a face 200 px wide."""

from __future__ import annotations

import numpy as np

from fkd.realtime.tracking.smooth import OneEuro

FPS, SIDE = 30.0, 200.0
START = np.array([[100.0, 120.0]] * 15)


def run(points: np.ndarray) -> np.ndarray:
    f = OneEuro()
    return np.array([f(p, i / FPS, scale=SIDE) for i, p in enumerate(points)])


def test_static_signal_passes_unchanged() -> None:
    out = run(np.repeat(START[None], 90, axis=0))
    assert np.array_equal(out, np.repeat(START[None], 90, axis=0))


def test_noise_is_reduced_at_least_2_5_times() -> None:
    """1 px of white noise per coordinate, as raw keypoints of a still face: RMS error falls 2.5x or more."""
    noisy = START + np.random.default_rng(0).normal(0, 1.0, (300, 15, 2))
    out = run(noisy)
    raw_rms = np.sqrt(((noisy[30:] - START) ** 2).mean())
    out_rms = np.sqrt(((out[30:] - START) ** 2).mean())
    assert raw_rms / out_rms >= 2.5, (raw_rms, out_rms)


def test_step_is_followed_within_3_frames() -> None:
    """A jump of a quarter face (50 px): within 1 px after 3 frames, and never past the target."""
    step = np.concatenate([np.repeat(START[None], 30, axis=0), np.repeat(START[None] + 50, 30, axis=0)])
    out = run(step)
    error = np.abs(out[30:] - (START + 50)).max(axis=(1, 2))
    assert error[3] < 1.0, error[:6]
    assert (out[30:] <= START + 50 + 1e-9).all()


def test_small_step_is_followed_within_5_frames() -> None:
    """A 10 px jump (5 % of the face) is within 1 px after 5 frames: slow moves lag a little more."""
    step = np.concatenate([np.repeat(START[None], 30, axis=0), np.repeat(START[None] + 10, 30, axis=0)])
    error = np.abs(run(step)[30:] - (START + 10)).max(axis=(1, 2))
    assert error[5] < 1.0, error[:8]


def test_reset_starts_again_from_the_next_point() -> None:
    f = OneEuro()
    f(START, 0.0, SIDE)
    f.reset()
    assert np.array_equal(f(START + 80, 1 / FPS, SIDE), START + 80)
