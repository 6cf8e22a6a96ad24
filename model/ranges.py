"""Declared ranges of the options typer cannot check itself: one home for them.

typer's ``min``/``max`` declare most ranges, but a float range lets NaN through (every
comparison with NaN is false), and ``--lr 0`` needs an open bound. ``require_number`` checks
those, raising a UsageError (exit 2) that names the flag. The integer limits shared by several
commands live here too.
"""

from __future__ import annotations

import math

from fkd.model.errors import UsageError

#: --seed: numpy's and torch's generators both take 0..2**32-1
MAX_SEED = 2**32 - 1
#: --width of the network: 8 is the least that trains, 256 already takes 80x the shipped model's memory
MAX_WIDTH = 256
#: --batch-size, --width/--height of a camera frame: far above any real use, below what overflows
MAX_BATCH = 65536
MAX_FRAME_SIDE = 16384


def require_number(flag: str, value: float | None, low: float | None = None, high: float | None = None,
                   low_open: bool = False) -> float | None:
    """``value`` if it is a finite number within [low, high] ((low, high] with ``low_open``); None passes."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise UsageError(f"{flag} must be a finite number, not {value}.")
    if low is not None and (value <= low if low_open else value < low):
        raise UsageError(f"{flag} must be {'above' if low_open else 'at least'} {low:g}, not {value:g}.")
    if high is not None and value > high:
        raise UsageError(f"{flag} must be at most {high:g}, not {value:g}.")
    return value
