"""Every usable core of one machine, without Ray: a pool of spawned processes that each load the model once.

fkd-predict spreads photos over the pool and takes their results back in input order, so its
output is the same, byte for byte, whatever ``--workers`` is; fkd-live with several videos hands
each process whole videos. The processes are spawned, not forked: onnxruntime's and OpenCV's
thread pools do not survive a fork, and spawning behaves the same on Linux and macOS. A worker
costs about a second to start (its imports and the weights), which is why a default pool is no
larger than the work can repay.

Signals: a worker ignores SIGINT and SIGHUP (a terminal sends Ctrl-C to the whole process group),
so only the command decides when to stop. It then stops handing out work and waits for what
is in flight: each photo in flight still ends up in the outputs, and a video in flight notices
``should_stop`` between frames and leaves nothing half-written.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from fkd.model.errors import FkdError
from fkd.model.io.signals import StopFlag

#: Photos a default pool gives each worker at least: starting one costs about as much as 20 photos.
PHOTOS_PER_WORKER = 20


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's share), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def pool_size(requested: int | None, jobs: int, per_worker: int = 1) -> int:
    """How many processes to use: ``requested`` (never more than the jobs), or by default the usable
    cores, as far as ``per_worker`` jobs each repay a worker's start-up."""
    if requested is not None:
        return max(1, min(requested, jobs))
    return max(1, min(usable_cores(), jobs // per_worker))


_worker: Any = None
_failed: BaseException | None = None


def _start(factory: Callable[..., Any], args: tuple, stop_event: Any) -> None:
    """In each new process: ignore the terminal's signals, then build the worker once."""
    global _worker, _failed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        _worker = factory(*args)
        if hasattr(_worker, "should_stop"):
            _worker.should_stop = stop_event.is_set
    except BaseException as error:  # reported by the first call: a failing initializer would respawn forever
        _failed = error


def _call(method: str, args: tuple) -> Any:
    if _failed is not None:
        raise _failed
    return getattr(_worker, method)(*args)


class WorkerPool:
    """``workers`` spawned processes, each holding ``factory(*args)``; use it as a context manager."""

    def __init__(self, factory: Callable[..., Any], args: tuple, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.workers = workers
        self._stop_event = context.Event()
        self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                                         initargs=(factory, args, self._stop_event))

    def ordered(self, method: str, calls: Iterable[tuple], stop: StopFlag) -> Iterator[Any]:
        """``worker.method(*call)`` for each call, yielded in the order of ``calls``.

        At most a few calls per worker are in flight, so results never pile up in memory; once
        ``stop`` is raised no new call starts, and the ones in flight are still yielded.
        """
        pending = iter(calls)
        window: deque[Future] = deque()
        depth = 4 * self.workers

        def fill() -> None:
            while len(window) < depth and not stop:
                call = next(pending, None)
                if call is None:
                    return
                window.append(self._pool.submit(_call, method, call))

        fill()
        while window:
            yield self._result(window.popleft())
            fill()

    def unordered(self, method: str, calls: Sequence[tuple], stop: StopFlag) -> Iterator[tuple[int, Any]]:
        """(index into ``calls``, result) as each call finishes; once ``stop`` is raised the calls
        not started are dropped and the running ones are told to stop (``should_stop``)."""
        futures = {self._pool.submit(_call, method, call): i for i, call in enumerate(calls)}
        running = set(futures)
        told = False
        while running:
            done, running = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                if not future.cancelled():
                    yield futures[future], self._result(future)
            if stop and not told:
                told = True
                self._stop_event.set()
                for future in running:
                    future.cancel()

    def _result(self, future: Future) -> Any:
        try:
            return future.result()
        except BrokenProcessPool:
            raise FkdError("a worker process ended unexpectedly (killed, or out of memory); the outputs hold "
                           "the work finished before it.") from None

    def close(self) -> None:
        self._stop_event.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
