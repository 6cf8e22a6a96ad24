"""Checks on the paths a command is given, before anything opens them: one home for path safety.

Three hazards are handled here, each refused in one sentence naming the flag and the file:
- OpenCV crashes (SIGSEGV, which Python cannot catch) on a path that is not valid UTF-8, so a
  path OpenCV must open itself never reaches it as such: a video is handed over as
  /proc/self/fd/N of the file opened here (``OpenCvName``), an output path is checked first
  (``require_utf8``), and images are read by bytes instead.
- Opening a FIFO or a device blocks forever, so an input must be a regular file.
- An output must never replace an input, and two outputs of one run never share a path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from fkd.model.errors import FkdError, UsageError


def shown(path: Path | str) -> str:
    """A path as text that can always be printed (undecodable bytes become \\x escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_utf8(path: Path | str) -> bool:
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def require_utf8(path: Path, flag: str) -> Path:
    """Refuse a path OpenCV would crash on; call it before any cv2 function sees the path."""
    if not is_utf8(path):
        raise FkdError(f"{flag} {shown(path)}: the path is not valid UTF-8, which OpenCV cannot open; "
                       f"rename the file.")
    return Path(path)


class OpenCvName:
    """A name under which OpenCV can open the input ``path``, whatever bytes the path is made of.

    A UTF-8 path is its own name. Any other is opened here and handed over as
    ``/proc/self/fd/N`` (Linux): OpenCV (FFmpeg) opens that link to the same file, and the
    descriptor stays open until ``close``. Where there is no /proc the path is refused in one
    sentence, as before, rather than crash the process.
    """

    def __init__(self, path: Path, flag: str) -> None:
        self._fd: int | None = None
        if is_utf8(path):
            self.name = str(path)
            return
        if not os.path.isdir("/proc/self/fd"):
            require_utf8(path, flag)
        try:
            self._fd = os.open(os.fsencode(path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            raise FkdError(f"{flag} {shown(path)}: cannot be opened ({e.strerror}).") from None
        self.name = f"/proc/self/fd/{self._fd}"

    def close(self) -> None:
        """Close the descriptor behind a /proc name (idempotent); the capture must be released first."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def check_input_file(path: Path, flag: str, what: str = "file", opencv: bool = False) -> Path:
    """An existing, readable regular file (a FIFO or device would block the reader forever)."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FkdError(f"{flag} {shown(path)} does not exist.") from None
    except OSError as e:
        raise FkdError(f"{flag} {shown(path)}: cannot be looked at ({e.strerror}).") from None
    if stat.S_ISDIR(info.st_mode):
        raise FkdError(f"{flag} {shown(path)} is a folder; give a {what}.")
    if not stat.S_ISREG(info.st_mode):
        raise FkdError(f"{flag} {shown(path)} is not a regular file (a FIFO, socket or device); give a {what}.")
    if not os.access(path, os.R_OK):
        raise FkdError(f"{flag} {shown(path)} is not readable (permission denied).")
    if opencv:
        require_utf8(path, flag)
    return path


def is_regular_file(path: Path) -> bool:
    """True for a regular file (following links); False for folders, FIFOs, devices, missing paths."""
    try:
        return stat.S_ISREG(Path(path).stat().st_mode)
    except OSError:
        return False


def read_image_bytes(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """Decode an image read by bytes, so any path works; None for a non-image, FIFO or unreadable file."""
    if not is_regular_file(path):
        return None
    try:
        data = np.fromfile(os.fsencode(path), dtype=np.uint8)
    except (OSError, ValueError):
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, flags)


def _same(a: Path, b: Path) -> bool:
    """The same file: equal resolved paths, or (both existing) the same inode through a link."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Sequence[tuple[str, Path | None]], inputs: Iterable[Path]) -> None:
    """Refuse an output file that is a folder, is an input, or is shared by two outputs.

    ``outputs`` are (flag, path) pairs; a None path is an output not asked for.
    """
    given = [(flag, Path(p)) for flag, p in outputs if p is not None]
    inputs = [Path(p) for p in inputs]
    for i, (flag, path) in enumerate(given):
        if path.is_dir():
            raise UsageError(f"{flag} {shown(path)} is a folder; give a file name to write.")
        for source in inputs:
            if _same(path, source):
                raise UsageError(f"{flag} {shown(path)} is also an input; writing it would destroy the input.")
        for other_flag, other in given[:i]:
            if _same(path, other):
                raise UsageError(f"{other_flag} and {flag} both name {shown(path)}; give each output its own file.")


def check_output_folder(flag: str, folder: Path, inputs: Iterable[Path]) -> None:
    """An output folder must not be, or lie inside, a folder of inputs, nor be an input file.

    Annotated copies keep the photos' names, so a folder among the inputs would overwrite them;
    refusing is simpler to explain than renaming.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {shown(folder)} is a file; give a folder for the annotated copies.")
    target = folder.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if source.is_dir() and (target == source or source in target.parents):
            raise UsageError(f"{flag} {shown(folder)} is inside the input folder {shown(source)}; the copies "
                             f"could overwrite the photos, so choose a folder outside it.")
        if not source.is_dir() and target == source.parent:
            raise UsageError(f"{flag} {shown(folder)} holds the input {shown(source)}; the copy would overwrite "
                             f"it, so choose another folder.")


def make_parent(path: Path, flag: str) -> Path:
    """Create the folder an output goes into, or say in one sentence why it cannot be; returns ``path``."""
    path = Path(path)
    make_folder(path.parent, flag, path)
    return path


def make_folder(folder: Path, flag: str, named: Path | None = None) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise FkdError(f"{flag} {shown(named or folder)}: cannot create the folder {shown(folder)}, "
                       f"a file is in the way.") from None
    except OSError as e:
        raise FkdError(f"{flag} {shown(named or folder)}: cannot create the folder {shown(folder)} "
                       f"({e.strerror}).") from None
    return folder
