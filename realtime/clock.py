"""The one time source of the live app: stream times, pacing and stage timings all read it.

Injecting another ``Clock`` (any zero-argument callable returning seconds) is how a test or
a benchmark steers time without sleeping; everything else takes the default.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]

#: Seconds from an arbitrary origin, monotonic and high resolution.
now: Clock = time.perf_counter
