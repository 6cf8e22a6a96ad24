"""Stopping cleanly on SIGTERM, SIGINT or SIGHUP: one home for fkd's signal handling.

Python's default turns SIGINT into an exception that can strike mid-write and lets SIGTERM
and SIGHUP kill the process outright, so an mp4 would never get its index (unplayable) and a
JSON-lines tail would stay in a buffer. Inside ``stop_on_signals`` a signal only raises a flag;
the loops look at it between units of work (a frame, a photo, a batch), stop, and finalise
every output as they would at the end. A second signal of the same kind still interrupts
(KeyboardInterrupt), for a loop stuck in a long call.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from fkd.model.errors import FkdError

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))


class StopFlag:
    """Set by the first signal; ``signum`` tells which one."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal (143 for SIGTERM), as a normal exit."""
        return 128 + (self.signum or 0)

    def note(self, what: str) -> str:
        """One sentence for stderr: which signal stopped the run and what was kept."""
        return f"stopped by {self.name}; {what}."


class Stopped(FkdError):
    """A run ended early by a signal, its outputs consistent; exits 128 + the signal's number."""

    def __init__(self, flag: StopFlag, when: str) -> None:
        """``when`` continues the sentence: "during epoch 3; last.pt holds ..." """
        super().__init__(f"stopped by {flag.name} {when}.")
        self.exit_code = flag.exit_code


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Turn SIGTERM/SIGINT/SIGHUP into a flag for the duration; the old handlers come back after.

    Outside the main thread (where Python cannot install handlers) the flag simply never rises.
    """
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.signum == signum:
            raise KeyboardInterrupt
        flag.signum = signum

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield flag
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
