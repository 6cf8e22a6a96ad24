"""Hand-overs from the frame loop to web viewers that never make the loop wait or memory grow.

The loop only swaps a reference or appends to a short deque under a lock that nobody holds
for longer than that (encoders and sockets work outside it). A viewer too slow for every
frame gets the newest one when its socket takes the next; one that stops reading blocks only
its own thread, which the server drops after a timeout. So however many viewers there are
and whatever they do, the loop's cost is a few attribute reads per frame, and memory holds at
most two raw frames (the one being encoded, the next) and one encoded frame per picture
stream, plus a bounded queue of records per viewer.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

#: JPEG quality of the picture streams: 80 keeps a 512x512 frame near 40 kB and the faces sharp.
JPEG_QUALITY = 80

#: Records a viewer may fall behind before its oldest are dropped (about 1 kB each with a face).
RECORD_QUEUE = 64


#: How much nicer than the loop an encoder thread runs: when the CPU is short, viewers get
#: fewer frames and the loop keeps its speed.
ENCODER_NICENESS = 10


def lower_priority(niceness: int = ENCODER_NICENESS) -> None:
    """Make the calling thread nicer (Linux schedules threads one by one); elsewhere, nothing."""
    if not sys.platform.startswith("linux"):  # elsewhere a thread id is no process id: the call could hit another
        return
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + niceness)


@dataclass(frozen=True)
class Jpeg:
    """One encoded frame: its place in the feed (``sequence``), the frame's index and the bytes."""

    sequence: int
    frame: int
    data: bytes


class JpegFeed:
    """The newest frame of one picture stream, encoded to JPEG in its own thread, for any number of viewers.

    The loop offers a frame only when it is wanted (``wants``): someone watches, and
    ``1 / max_rate`` s have passed since the last offer, so a file that runs faster
    than real time costs no more than its own frame rate in encoding (and in copies). The
    encoder takes the newest frame offered (skipping any it had no time for) and encodes it once
    for all viewers. cv2.imencode releases the GIL, so encoding runs beside the loop on another core.
    """

    def __init__(self, name: str, max_rate: float, quality: int = JPEG_QUALITY) -> None:
        self.name = name
        self._period = 1.0 / max_rate
        self._quality = quality
        lock = threading.Lock()
        self._offered = threading.Condition(lock)  # the encoder waits here
        self._ready = threading.Condition(lock)  # viewers wait here
        self._pending: tuple[int, np.ndarray] | None = None
        self._latest: Jpeg | None = None
        self._viewers = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._due = 0.0  # time.monotonic() from which the next frame is wanted (set by offer)
        self.encoded = 0
        self.viewers_in_all = 0

    @property
    def watched(self) -> bool:
        return self._viewers > 0  # an int read: no lock needed for a hint

    @property
    def viewers(self) -> int:
        return self._viewers

    def wants(self) -> bool:
        """Whether the loop should offer this frame: plain reads, no lock (a hint, right within a frame)."""
        return self._viewers > 0 and time.monotonic() >= self._due

    def offer(self, index: int, image: np.ndarray) -> None:
        """Called by the loop: make ``image`` the next to encode. The loop must not change it afterwards."""
        if not self.wants():
            return
        with self._offered:
            self._pending = (index, image)
            self._due = time.monotonic() + self._period
            self._offered.notify()

    def join(self) -> bool:
        """A viewer arrives; False once the feed is closed."""
        with self._offered:
            if self._closed:
                return False
            self._viewers += 1
            self.viewers_in_all += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._encode, name=f"fkd-jpeg-{self.name}", daemon=True)
                self._thread.start()
            return True

    def leave(self) -> None:
        with self._offered:
            self._viewers -= 1
            if not self._viewers:  # no one will see them: do not keep the frames alive (nor show the next
                self._pending = self._latest = None  # viewer a picture from long ago)

    def newer_than(self, sequence: int, timeout: float) -> Jpeg | None:
        """The newest JPEG if it is newer than ``sequence``; None after ``timeout`` s or once closed."""
        with self._ready:
            self._ready.wait_for(lambda: self._closed or (self._latest is not None
                                                          and self._latest.sequence > sequence), timeout)
            latest = self._latest
            if self._closed or latest is None or latest.sequence <= sequence:
                return None
            return latest

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._offered:
            self._closed = True
            self._pending = None
            self._offered.notify_all()
            self._ready.notify_all()

    def _encode(self) -> None:
        lower_priority()
        sequence = 0
        params = [cv2.IMWRITE_JPEG_QUALITY, self._quality]
        while True:
            with self._offered:
                self._offered.wait_for(lambda: self._closed or self._pending is not None)
                if self._closed:
                    return
                pending, self._pending = self._pending, None
            assert pending is not None
            ok, data = cv2.imencode(".jpg", pending[1], params)
            if not ok:
                continue
            sequence += 1
            with self._ready:
                self._latest = Jpeg(sequence, pending[0], data.tobytes())
                self.encoded += 1
                self._ready.notify_all()


@dataclass(eq=False)
class Subscription:
    """One viewer's records not yet sent, oldest first; the oldest go when it falls too far behind."""

    queue: deque[str] = field(default_factory=lambda: deque(maxlen=RECORD_QUEUE))
    dropped: int = 0


class RecordFeed:
    """Every record, as its JSON line, into each subscriber's own short queue."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._subscribers: list[Subscription] = []
        self._closed = False
        self.viewers_in_all = 0
        self.dropped = 0  # records dropped for subscribers that have left

    @property
    def watched(self) -> bool:
        return bool(self._subscribers)

    @property
    def viewers(self) -> int:
        return len(self._subscribers)

    def publish(self, line: str) -> None:
        """Called by the loop: O(subscribers) appends, never a wait on a socket."""
        with self._cond:
            for sub in self._subscribers:
                if len(sub.queue) == RECORD_QUEUE:
                    sub.dropped += 1
                sub.queue.append(line)
            self._cond.notify_all()

    def subscribe(self) -> Subscription | None:
        with self._cond:
            if self._closed:
                return None
            sub = Subscription()
            self._subscribers = [*self._subscribers, sub]  # a new list: `watched` reads it without the lock
            self.viewers_in_all += 1
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._cond:
            self._subscribers = [s for s in self._subscribers if s is not sub]
            self.dropped += sub.dropped

    def take(self, sub: Subscription, timeout: float) -> list[str] | None:
        """Every line waiting for ``sub`` ([] after ``timeout`` s with none), or None once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or bool(sub.queue), timeout)
            if self._closed:
                return None
            lines = list(sub.queue)
            sub.queue.clear()
            return lines

    def dropped_in_all(self) -> int:
        with self._cond:
            return self.dropped + sum(sub.dropped for sub in self._subscribers)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
