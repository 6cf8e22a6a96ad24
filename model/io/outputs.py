"""Claiming an output file for one run: a lock beside it, and the clean-up of killed runs' leftovers.

Two runs writing the same file would interleave or overwrite each other's work, so each output
is claimed with an exclusive ``flock`` on ``.<name>.fkd-lock`` in the same folder; the second
run is refused in one sentence. The kernel drops the lock when its holder dies, even by kill -9,
so a lock file never blocks later runs. Claiming an output also removes the temporaries that
killed runs left in its folder (model/io/files.py), sparing any another live run still writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from fkd.model.errors import FkdError
from fkd.model.io.files import remove_stale_temporaries, target_of
from fkd.model.io.paths import shown

LOCK_SUFFIX = ".fkd-lock"
#: A temporary whose target has no lock file is taken for a live write until it is this old
#: (checkpoints and metrics are written without a lock, and within seconds).
UNLOCKED_GRACE_S = 600.0


def lock_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}{LOCK_SUFFIX}")


def _try_lock(lock: Path) -> int | None:
    """An fd holding an exclusive lock on ``lock`` (created if need be), or None if another holds it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:  # the holder before us may have unlinked the file while we opened it: lock the new one
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def is_locked(path: Path) -> bool:
    """True while some run holds the lock of output ``path``."""
    lock = lock_path(path)
    if not lock.exists():
        return False
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def temporary_in_use(temporary: Path) -> bool:
    """Whether another run may still be writing ``temporary`` (so it must not be removed)."""
    target = target_of(temporary)
    if lock_path(target).exists():
        return is_locked(target)
    with contextlib.suppress(FileNotFoundError):
        return time.time() - temporary.stat().st_mtime < UNLOCKED_GRACE_S
    return False


class OutputLock:
    """Held while a run writes ``path``; released (and its lock file removed) by ``release``."""

    def __init__(self, path: Path, flag: str) -> None:
        self.path = Path(path)
        self._lock = lock_path(self.path)
        try:
            fd = _try_lock(self._lock)
        except OSError as e:
            raise FkdError(f"{flag} {shown(self.path)}: cannot write in its folder ({e.strerror}).") from None
        if fd is None:
            raise FkdError(f"{flag} {shown(self.path)} is being written by another fkd run; wait for it to "
                           f"finish or choose another file.")
        self._fd: int | None = fd
        mine = self.path.name  # our own target's leftovers are stale: we hold its lock
        remove_stale_temporaries(self.path.parent, lambda t: target_of(t).name != mine and temporary_in_use(t))

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self._lock.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
