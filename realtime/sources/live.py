"""Live sources (cameras and network streams): a reader thread that keeps only the newest frame.

A slow frame costs the frames that came meanwhile (counted), never a growing delay; a stream
that drops is reopened with backoff a bounded number of times, then simply ends so the caller
can finalise what it wrote so far. Opening has a deadline, since not every backend honours one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from fkd.realtime.sources.video import Frame, VideoSource


def backoff(attempt: int) -> float:
    """Seconds to wait before reopen attempt ``attempt`` (0-based): 0.5, 1, 2, 4, then 8 at most."""
    return min(0.5 * 2.0**attempt, 8.0)


class _Silenced:
    """OpenCV's own log lines off while a device or URL is tried: each backend logs its own failure."""

    def __enter__(self) -> None:
        self._level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

    def __exit__(self, *exc: object) -> None:
        cv2.utils.logging.setLogLevel(self._level)


def open_with_deadline(make: Callable[[], cv2.VideoCapture], seconds: float) -> cv2.VideoCapture | None:
    """``make()`` in a thread; None when it did not return an opened capture within ``seconds``.

    OpenCV's timeouts cover FFmpeg, but not every backend or driver; a capture that opens after
    the deadline is released by its own thread.
    """
    box: dict[str, cv2.VideoCapture] = {}
    lock = threading.Lock()
    abandoned = threading.Event()

    def target() -> None:
        try:
            with _Silenced():
                cap = make()
        except Exception:  # cv2.error from a driver: the same as not opening
            return
        with lock:
            if abandoned.is_set() or not cap.isOpened():
                cap.release()
            else:
                box["cap"] = cap

    thread = threading.Thread(target=target, name="fkd-open", daemon=True)
    thread.start()
    thread.join(seconds)
    with lock:
        abandoned.set()
        return box.get("cap")


class LiveSource(VideoSource):
    """A camera or network stream read by its own thread, which keeps only the newest frame.

    The loop takes whatever frame is newest when it is ready for one; frames replaced before it
    got to them are counted in ``dropped``. A frame's time is wall-clock seconds since the first
    frame. When reading fails the source calls ``reopen`` (with backoff) up to ``reconnects``
    times in a row; after that the stream ends and the caller finalises its outputs.
    """

    def __init__(self, capture: cv2.VideoCapture, name: str,
                 reopen: Callable[[], cv2.VideoCapture | None] | None = None, reconnects: int = 0) -> None:
        super().__init__(capture, name, live=True)
        # OpenCV's own lines ("Stream timeout triggered", a failed reopen naming the URL) stay off while
        # the stream is read: the summary says what happened, with credentials masked
        self._log_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        self._reopen, self.reconnects = reopen, reconnects
        self.dropped = self.breaks = self.reopened = self.resized = 0
        self.gave_up = False
        self.notes_first: list[str] = []  # what the opener wants said first (a camera's actual settings)
        self._start = time.monotonic()
        first, self._first = self._first, None
        assert first is not None
        self._latest: Frame | None = None
        self._ended = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._publish(first)
        self._thread = threading.Thread(target=self._read, name="fkd-live-reader", daemon=True)
        self._thread.start()

    def _publish(self, image: np.ndarray) -> None:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if image.shape[:2] != (self.height, self.width):  # a reopened stream may come back resized
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
            self.resized += 1
        frame = Frame(self.frames_read, time.monotonic() - self._start, image,
                      cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        with self._cond:
            if self._latest is not None:
                self.dropped += 1
            self._latest = frame
            self.frames_read += 1
            self._cond.notify_all()

    def _read(self) -> None:
        attempts_left = self.reconnects
        try:
            while not self._stop.is_set():
                ok, image = self._cap.read()
                if self._stop.is_set():
                    break
                if ok and image is not None:
                    self._publish(image)
                    attempts_left = self.reconnects
                    continue
                self.breaks += 1
                self._cap.release()
                opened = None
                while opened is None and attempts_left > 0 and self._reopen is not None:
                    if self._stop.wait(backoff(self.reconnects - attempts_left)):
                        return
                    attempts_left -= 1
                    opened = self._reopen()
                if opened is None:
                    self.gave_up = self._reopen is not None and not self._stop.is_set()
                    return
                self._cap = opened
                self.reopened += 1
        except Exception:  # a driver error ends the stream like a disconnect; the loop finalises its outputs
            return
        finally:
            self._cap.release()
            cv2.utils.logging.setLogLevel(self._log_level)
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._latest is None and not self._ended:
                    self._cond.wait(0.5)
                frame, self._latest = self._latest, None
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        """Stop the reader; it releases the capture itself (a read in progress ends within its timeout)."""
        self._stop.set()
        self._thread.join(timeout=1.0)

    def notes(self) -> list[str]:
        lines = list(self.notes_first)
        if self.dropped:
            lines.append(f"{self.dropped} of the {self.frames_read} frames {self.name} sent were dropped: they came "
                         f"while an earlier frame was being processed (a live source: the newest frame wins).")
        if self.breaks:
            end = "."
            if self.gave_up and self.reconnects:
                end = (f"; it did not come back after {self.reconnects} attempt(s) with backoff (--reconnect), so the "
                       f"run ended there with every output complete.")
            elif self.gave_up:
                end = "; with --reconnect 0 the run ended there, with every output complete."
            lines.append(f"{self.name} broke off {self.breaks} time(s) and was reopened {self.reopened} time(s){end}")
        if self.resized:
            lines.append(f"{self.resized} frames came back at another size after a reopen and were resized to "
                         f"{self.width}x{self.height}.")
        return lines

