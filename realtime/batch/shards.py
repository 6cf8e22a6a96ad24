"""``--export DIR`` of a Ray run: JSON-lines shards that a rerun can trust, and resume from.

Each shard is written to a temporary in DIR and renamed to ``part-<run>-<n>.jsonl`` only once it
is closed (model/io/files.py), so a file with that name is always complete: a run killed with -9
leaves at most one temporary, which the next run removes, and never a shard that looks done but
is not. A shard is closed every ``SHARD_RECORDS`` records or ``SHARD_SECONDS`` seconds, and when
the run ends or is stopped by a signal, so a stopped run keeps every record it made.

A rerun reads the ``image`` of every record in the complete shards and does only the photos not
among them: nothing is done twice, nothing is lost. DIR is claimed for one run at a time (a lock
beside it, model/io/outputs.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import IO

from fkd.model.errors import FkdError
from fkd.model.io.files import atomic_path, remove_stale_temporaries
from fkd.model.io.outputs import OutputLock
from fkd.model.io.paths import make_folder, shown

SHARD_GLOB = "part-*.jsonl"
SHARD_RECORDS = 1000
SHARD_SECONDS = 30.0


def done_images(folder: Path) -> set[str]:
    """The ``image`` of every record in the complete shards of ``folder`` (none if it does not exist)."""
    done: set[str] = set()
    if not folder.is_dir():
        return done
    for shard in sorted(folder.glob(SHARD_GLOB)):
        with shard.open(encoding="utf-8", errors="surrogateescape") as lines:
            for line in lines:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    done.add(json.loads(line)["image"])
    return done


class ShardWriter:
    """Records into complete shards in ``folder``; ``close`` (or a signal's stop) keeps them all."""

    def __init__(self, folder: Path, flag: str = "--export", records: int = SHARD_RECORDS,
                 seconds: float = SHARD_SECONDS) -> None:
        self.folder = make_folder(folder, flag)
        self.flag = flag
        self._lock = OutputLock(folder, flag)  # one run per folder; the lock sits beside it
        remove_stale_temporaries(self.folder)  # we hold the folder: every temporary in it is a kill's leftover
        self._run = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"
        self._limit, self._seconds = records, seconds
        self._count = 0
        self._shards = 0
        self._opened = 0.0
        self._file: IO[str] | None = None
        self._stack = contextlib.ExitStack()
        self.lines = 0

    def write(self, line: str) -> None:
        """One record, already JSON (no newline)."""
        if self._file is None:
            self._open()
        assert self._file is not None
        try:
            self._file.write(line + "\n")
        except OSError as e:  # a half-written line: this shard must not count as complete
            self._drop()
            raise FkdError(f"{self.flag} {shown(self.folder)}: cannot write a shard there ({e.strerror}).") from None
        self._count += 1
        self.lines += 1
        if self._count >= self._limit or time.monotonic() - self._opened >= self._seconds:
            self._finish()

    def _open(self) -> None:
        self._shards += 1
        target = self.folder / f"part-{self._run}-{self._shards:05d}.jsonl"
        try:
            tmp = self._stack.enter_context(atomic_path(target))
            self._file = self._stack.enter_context(tmp.open("w", encoding="utf-8"))
        except OSError as e:
            self._stack.close()
            raise FkdError(f"{self.flag} {shown(self.folder)}: cannot write a shard there ({e.strerror}).") from None
        self._count = 0
        self._opened = time.monotonic()

    def _finish(self) -> None:
        """Close the open shard and rename it into place: from now on it counts as complete."""
        self._stack.close()
        self._file = None

    def close(self) -> None:
        """Rename the open shard into place (every line in it is a whole record) and free DIR."""
        try:
            self._finish()
        finally:
            self._lock.release()

    def _drop(self) -> None:
        """Remove the open shard's temporary; the shards already renamed stay."""
        with contextlib.suppress(Exception):
            self._stack.__exit__(OSError, OSError("dropped"), None)
        self._stack = contextlib.ExitStack()
        self._file = None
