"""Where frames come from: a camera, a network stream, a video file, or image files and folders.

Every failure to open becomes an FkdError with one sentence; a stream that breaks after it
opened simply ends, so the caller can finalise what it wrote so far. Cameras and network
streams are live (``LiveSource``): a reader thread keeps only the newest frame, so a slow
frame costs the frames that came meanwhile (counted), never a growing delay; a network
stream that drops is reopened with backoff a bounded number of times.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from fkd.model.errors import FkdError, UsageError
from fkd.model.paths import OpenCvName, check_input_file, read_image_bytes, shown
from fkd.realtime.defaults import RECONNECTS, STREAM_TIMEOUT

# FFmpeg's own messages ("moov atom not found") would follow our one-sentence errors; the
# variable is read when OpenCV's FFmpeg backend opens its first file. Set it to override.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"})


@dataclass
class Frame:
    index: int
    time: float  # seconds since the start of the stream
    image: np.ndarray  # BGR, uint8
    gray: np.ndarray | None = None  # filled by whoever needs it first


class VideoSource:
    """Frames of a camera or a file, with the source's size and fps, read one at a time."""

    def __init__(self, capture: cv2.VideoCapture, name: str, live: bool) -> None:
        self._cap = capture
        self.name = name
        self.live = live
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0  # cameras often report 0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = count if count > 0 and not live else None
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise FkdError(f"{name} opened but gave no frame; it is empty, corrupt or busy.")
        self._first: np.ndarray | None = first
        self.height, self.width = first.shape[:2]
        self.frames_read = 0

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        while True:
            if self._first is not None:
                image, self._first = self._first, None
            else:
                ok, image = self._cap.read()
                if not ok or image is None:
                    return
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            t = time.monotonic() - start if self.live else self.frames_read / self.fps
            yield Frame(self.frames_read, t, image)
            self.frames_read += 1

    #: called after the capture is released (the descriptor behind a /proc/self/fd name)
    closing: Callable[[], None] | None = None

    def close(self) -> None:
        self._cap.release()
        if self.closing is not None:
            self.closing()

    def notes(self) -> list[str]:
        """Lines for the run's summary about the source itself (none for a file)."""
        return []

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: Path) -> VideoSource:
    """A video file, whatever bytes its path is made of; missing, unreadable or non-video files are
    refused in one sentence."""
    path = check_input_file(path, "--video", "video file")  # no FIFO hang
    handle = OpenCvName(path, "--video")  # a non-UTF-8 path would crash OpenCV: /proc/self/fd/N instead
    try:
        # one decoder thread: FFmpeg's own threads only contend with fkd's on a small CPU (+5 % fps here)
        cap = cv2.VideoCapture(handle.name, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
        if not cap.isOpened():
            cap.release()
            raise FkdError(f"{shown(path)} could not be opened as a video (corrupt, or not a video format).")
        source = VideoSource(cap, f"video file {shown(path)}", live=False)
    except BaseException:
        handle.close()
        raise
    source.closing = handle.close
    return source


#: Network streams FFmpeg (inside the pip OpenCV) opens; each is a live source like a camera.
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https", "udp")

_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")
_SECRET_QUERY = re.compile(r"(?i)(?<=[?&;])((?:user(?:name)?|pass(?:word)?|pwd|token|key|auth|secret)=)[^&;#\s]*")
_DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}


def is_url(text: str) -> bool:
    """True for anything of the form scheme://..., supported or not (so both get a clear answer)."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) is not None


def mask_credentials(text: str) -> str:
    """``text`` with URL credentials hidden: user:pass@ becomes ***@, and password=... becomes password=***.

    Everything fkd prints or writes about a stream goes through this, so a camera's login never
    reaches a terminal, a log or a file.
    """
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", text))


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


def _open_with_deadline(make: Callable[[], cv2.VideoCapture], seconds: float) -> cv2.VideoCapture | None:
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


def _reach(url: str, seconds: float) -> str:
    """Why a TCP stream's server cannot be reached ("" if it accepts a connection, or for udp)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return ""
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return "its port is not a number from 0 to 65535"
    host = parts.hostname
    if not host:
        return "it names no host"
    try:
        with socket.create_connection((host, port), timeout=seconds):
            return ""
    except socket.gaierror:
        return f"the host name {host} could not be resolved"
    except ConnectionRefusedError:
        return f"nothing accepts connections on {host} port {port} (connection refused)"
    except TimeoutError:
        return f"{host} port {port} did not answer within {seconds:g} s"
    except OSError as e:
        return f"{host} port {port} could not be reached ({e.strerror or e})"


def _open_url(url: str, seconds: float) -> tuple[cv2.VideoCapture | None, str]:
    """(an opened capture, "") or (None, what failed), within about ``seconds``."""
    start = time.monotonic()
    why = _reach(url, seconds)
    if why:
        return None, why
    left = max(seconds - (time.monotonic() - start), 0.5)
    ms = int(left * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(seconds * 1000)]
    cap = _open_with_deadline(lambda: cv2.VideoCapture(url, cv2.CAP_FFMPEG, params), left + 1.0)
    if cap is not None:
        return cap, ""
    if time.monotonic() - start >= 0.9 * seconds:
        return None, f"no video came within {seconds:g} s"
    if urlsplit(url).scheme.lower() == "udp":
        return None, "no video stream could be read from it"
    return None, "the server answered but no video stream could be opened there (a wrong path, not a video, " \
                 "or a login needed)"


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


def parse_camera(text: str, highest: int) -> int | Path:
    """--camera's value: an index 0..``highest``, or a camera device path such as /dev/video2.

    Checked before OpenCV sees it: OpenCV crashes on some indices (-1) and overflows on others.
    """
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        index = int(text)
        if not 0 <= index <= highest:
            raise UsageError(f"--camera {text}: a camera index is a whole number from 0 to {highest}; "
                             f"fkd-live --list-cameras shows the cameras there are.")
        return index
    path = Path(text)
    if not path.exists():
        raise FkdError(f"--camera {text}: no such device; give a camera index (0, 1, ...) or a device path "
                       f"such as /dev/video0 (fkd-live --list-cameras shows them).")
    if not stat.S_ISCHR(path.stat().st_mode):
        raise UsageError(f"--camera {text} is not a camera device; use --video for a video file or stream.")
    return path


def open_camera(camera: int | Path = 0, width: int | None = None, height: int | None = None,
                fps: float | None = None, timeout: float = STREAM_TIMEOUT) -> LiveSource:
    """A camera by index or device path, asked for ``width`` x ``height`` at ``fps`` where it allows.

    The summary notes what the camera actually gives, since drivers round or ignore requests.
    """
    name = f"camera {camera}"

    def make() -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(camera), cv2.CAP_V4L2) if isinstance(camera, Path) else cv2.VideoCapture(camera)
        if cap.isOpened():
            if width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                cap.set(cv2.CAP_PROP_FPS, fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog
        return cap

    cap = _open_with_deadline(make, timeout)
    if cap is None:
        raise FkdError(f"{name} could not be opened (no camera there, or it is busy); pass --camera with another "
                       f"index or device (fkd-live --list-cameras), or --video to read a file or stream.")
    reported = cap.get(cv2.CAP_PROP_FPS)
    source = LiveSource(cap, name, reopen=lambda: _open_with_deadline(make, timeout), reconnects=RECONNECTS)
    asked = [f"{width or '?'}x{height or '?'}" if width or height else "", f"{fps:g} fps" if fps else ""]
    gave = f"{source.width}x{source.height}" + (f" at {reported:g} fps" if reported > 0 else " (fps not reported)")
    wished = " at ".join(a for a in asked if a)
    source.notes_first.append(f"{name} gave {gave}" + (f" (asked for {wished})." if wished else "."))
    return source


def open_stream(url: str, timeout: float = STREAM_TIMEOUT, reconnects: int = RECONNECTS) -> LiveSource:
    """A network stream (rtsp, rtsps, http(s) MJPEG or video, udp) as a live source.

    Failing to open takes at most about ``timeout`` seconds and ends in one sentence that names
    the URL with its credentials masked.
    """
    shown = mask_credentials(url)
    scheme = url.split("://", 1)[0].lower()
    if scheme not in STREAM_SCHEMES:
        raise UsageError(f"--video {shown}: {scheme}:// streams are not supported; use "
                         f"{', '.join(STREAM_SCHEMES)}, or give a file path.")
    cap, why = _open_url(url, timeout)
    if cap is None:
        raise FkdError(f"--video {shown} could not be opened: {why}.")
    try:
        return LiveSource(cap, f"stream {shown}", reopen=lambda: _open_url(url, timeout)[0], reconnects=reconnects)
    except FkdError:
        raise FkdError(f"--video {shown} opened but sent no frame within {timeout:g} s.") from None


def list_cameras(timeout: float = 3.0) -> list[tuple[str, int, int]]:
    """(camera, width, height) for each camera that opens and gives a frame.

    On Linux the /dev/video* devices are tried (none: no camera, answered at once); elsewhere
    indices 0..9. Each try has a deadline, so a hung driver cannot stall the listing.
    """
    if sys.platform.startswith("linux"):
        found = sorted((p for p in Path("/dev").glob("video*") if p.name[5:].isdigit()), key=lambda p: int(p.name[5:]))
        tries: list[int | Path] = list(found)
    else:
        tries = list(range(10))
    cameras = []
    for camera in tries:
        def make(camera: int | Path = camera) -> cv2.VideoCapture:
            cap = cv2.VideoCapture(str(camera), cv2.CAP_V4L2) if isinstance(camera, Path) else cv2.VideoCapture(camera)
            if cap.isOpened() and not cap.grab():
                cap.release()
            return cap

        cap = _open_with_deadline(make, timeout)
        if cap is not None:
            cameras.append((str(camera), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
            cap.release()
    return cameras


def list_images(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """(image path, name for its annotated copy), for files named and images under folders named.

    Files named explicitly are passed on whatever their suffix, so a non-image is reported
    rather than silently ignored; in folders only image suffixes count (300-W keeps its
    .pts files beside the photos). Names keep the folder's own name and the path below it,
    so two folders with the same file names do not overwrite each other's copies.
    """
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        found = Path(root) / name
                        yield found, Path(path.resolve().name) / found.relative_to(path)
        else:
            yield path, Path(path.name)


def read_image(path: Path) -> np.ndarray | None:
    """A BGR image, or None when the file is missing, not a regular file or not a decodable image."""
    return read_image_bytes(path, cv2.IMREAD_COLOR)
