"""fkd on Ray: photos through Ray Data, videos as Ray tasks, on a local Ray or a cluster.

``--ray`` alone starts a Ray inside the command's own process (nothing else to install or run);
``--ray auto`` joins the cluster that ``ray start --head`` started on this machine, and
``--ray HOST:PORT`` or ``--ray ray://HOST:PORT`` (Ray Client) a remote one. Ray is imported only
here, and only once a command was given ``--ray``, so the light paths never pay for it.

Photos: one Ray Data pipeline. Local (or shared) paths enter as rows of paths and are read by the
actors with fkd's own reader (any path, as without Ray); URIs are read by Ray Data itself
(``read_binary_files``, pyarrow filesystems). A pool of actors, each loading the model once, does
the per-photo work (realtime/batch/photo_work.py) and writes the annotated copies; the records stream
back to the command, which keeps each photo's first record only and writes the shards
(realtime/batch/shards.py). Ray Data restarts an actor that dies and retries its batch, so a killed
worker costs time, never a photo, and never a second record.

Videos: one Ray task per video (realtime/batch/video_work.py), retried if its worker dies; the file a
task writes appears only when complete, so a retry cannot leave a half file or a second one.
On a cluster, the photos' paths, ``--output``, the videos and ``--export`` must be on storage
every node sees (or the photos given as URIs), and every node needs fkd installed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fkd.model.errors import FkdError
from fkd.model.extras import require_ray_extra
from fkd.model.io.signals import StopFlag
from fkd.realtime.batch.expand import Photo, plain_name
from fkd.realtime.batch.photo_work import PhotoSettings
from fkd.realtime.batch.ray_option import LOCAL
from fkd.realtime.batch.video_work import VideoJob, VideoResult, VideoSettings
from fkd.realtime.outputs.records import error_record, record_json

#: Photos per actor call: large enough that Ray's cost per batch (tasks, objects, statistics) stays
#: small (2,000 photos on a local 2-CPU Ray: 30.5 s with 8, 26.4 s with 32; bench/RESULTS.md), small
#: enough that a stop waits about half a second and a retried batch redoes little.
BATCH = 32
#: CPUs each photo actor asks for: a sliver of every CPU stays free for Ray Data's reads of URIs,
#: which would otherwise wait for CPUs that the actors hold for the whole run.
ACTOR_CPUS = 0.95
READ_CPUS = 0.05
#: How long a Ray this command started waits, at the end, for the threads Ray Data left running
#: (they end within moments of the run; see shutdown_when_quiet).
QUIET_SECONDS = 5.0
#: Ray Data's block prefetcher thread (ray 2.60.0) parks for good once the iteration is over and
#: keeps its object alive itself: it never wakes before the process exits, so it is not waited for.
PARKED_THREADS = ("Prefetcher",)


@contextlib.contextmanager
def ray_session(address: str, cpus: int) -> Iterator[int]:
    """Ray, connected for the duration; yields the CPUs it has. A local Ray gets ``cpus`` CPUs and
    is shut down after; one already running in this process (a notebook, a test) is used as it is."""
    require_ray_extra()
    if address.startswith("ray://") and importlib_missing("grpc"):
        raise FkdError(f'--ray {address}: Ray Client addresses need pip install "ray[client]==2.60.0"; on a '
                       f"node of the cluster, --ray auto needs nothing more.")
    # a Ray started here reports no usage statistics home (a cluster keeps its own setting)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    for name in ("ray", "ray.data"):  # Ray's own INFO and WARNING lines would bury fkd's one-line summary
        logging.getLogger(name).setLevel(logging.ERROR)
    owned = not ray.is_initialized()
    with contextlib.ExitStack() as stack:
        if owned:
            stack.enter_context(native_stderr_hidden())
            try:
                if address == LOCAL:
                    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                             logging_level=logging.ERROR)
                else:
                    ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            except Exception as e:  # whatever Ray raises for a cluster it cannot reach or start: one sentence
                if address == LOCAL:
                    raise FkdError(f"--ray: a Ray inside this command could not start ({first_line(e)}).") from None
                where = ("no Ray cluster runs on this machine" if address == "auto"
                         else f"it could not be reached ({first_line(e)})")
                raise FkdError(f"--ray {address}: {where}; start one with `ray start --head`, or give --ray alone "
                               f"for a Ray inside this command.") from None
            stack.callback(shutdown_when_quiet, ray, set(threading.enumerate()))
        _quiet_data()
        yield max(1, int(ray.cluster_resources().get("CPU", 1)))


def shutdown_when_quiet(ray: Any, before: set[threading.Thread], wait: float = QUIET_SECONDS) -> None:
    """``ray.shutdown()``, once nothing else in this process can let go of a Ray object during it.

    ray.shutdown stops the driver's core worker, releasing the GIL meanwhile, and forgets it only
    after. An ObjectRef or actor handle freed in that window, by another thread or by a garbage
    collection in any thread, makes Ray end the process on the spot: exit 1, nothing on stderr, the
    open shard never renamed (issue 35). A run that stopped early leaves both behind: Ray Data's
    ``iter_threaded`` worker, still unwinding over its last blocks, and the run's reference cycles
    (the executor, its blocks, the actor pool's handle). So the threads started since ``before``
    get ``wait`` seconds to end, the cycles are collected while the core worker still serves, and
    the collector stays off during the shutdown itself.
    """
    deadline = time.monotonic() + wait
    for thread in threading.enumerate():
        if thread not in before and thread is not threading.current_thread() and thread.name not in PARKED_THREADS:
            thread.join(max(0.0, deadline - time.monotonic()))
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        ray.shutdown()
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """Ray's C++ core writes its own notes straight to file descriptor 2 (at error level: an actor's
    restart caveats, ray-project/ray#53727), between fkd's warnings and its summary. For the
    session, descriptor 2 goes to /dev/null while Python's ``sys.stderr`` keeps writing where
    stderr went before; what fails still reaches the user, as fkd's one sentence."""
    import sys

    try:
        python_on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a captured stderr (a test): only the descriptor moves
        python_on_fd2 = False
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    previous = sys.stderr
    if python_on_fd2:
        sys.stderr = open(saved, "w", buffering=1, encoding=previous.encoding, errors="backslashreplace",  # noqa: SIM115
                          closefd=False)
    try:
        yield
    finally:
        if python_on_fd2:
            sys.stderr.flush()
            sys.stderr = previous
        os.dup2(saved, 2)
        os.close(saved)


def importlib_missing(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is None


def first_line(error: BaseException) -> str:
    """The first sentence of an error's message, to go inside fkd's own sentence."""
    text = str(error).strip().splitlines()
    return text[0].split(". ")[0].rstrip(".") if text else type(error).__name__


def _quiet_data() -> None:
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # fkd draws its own bar
    for option in ("print_on_execution_start", "enable_operator_progress_bars"):
        if hasattr(context, option):
            setattr(context, option, False)
    logging.getLogger("ray.data").setLevel(logging.ERROR)


class PhotoActor:
    """A Ray Data actor: a PhotoWorker (weights loaded once) over batches of rows.

    A row is either a local path (``read``) or an object Ray Data has read (``data``); ``key`` is
    what the record calls the photo and ``name`` its annotated copy. Out comes one JSON line per
    row, with the photo's face count (-1: not readable, the line is its error record).
    """

    def __init__(self, settings: PhotoSettings) -> None:
        from fkd.realtime.batch.photo_work import PhotoWorker

        self.worker = PhotoWorker(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        keys, lines, faces = [], [], []
        for read, key, name, data in zip(batch["read"], batch["key"], batch["name"], batch["data"]):
            shown_key, copy = os.fsdecode(bytes(key)), Path(os.fsdecode(bytes(name)))
            if len(read):
                result = self.worker.photo(Path(os.fsdecode(bytes(read))), copy, key=shown_key)
            else:
                result = self.worker.encoded(bytes(data), shown_key, copy)
            keys.append(bytes(key))
            lines.append(record_json(result.record if result.record is not None
                                     else error_record(shown_key, result.why)))
            faces.append(result.faces if result.record is not None else -1)
        return {"key": keys, "line": lines, "faces": faces}


def _as_rows(batch: dict[str, np.ndarray], prefix: str) -> dict[str, list]:
    """Ray Data's (bytes, path) rows of one filesystem, as PhotoActor's rows; the key is the URI."""
    uris = [prefix + str(p) for p in batch["path"]]
    return {"read": [b""] * len(uris), "key": [u.encode() for u in uris],
            "name": [os.fsencode(plain_name(u)) for u in uris], "data": list(batch["bytes"])}


def photos_on_ray(photos: Sequence[Photo], settings: PhotoSettings, actors: int,
                  stop: StopFlag) -> Iterator[tuple[str, str, int]]:
    """(key, JSON line, faces or -1) for each photo as the actors finish it, until done or ``stop``.

    Missing URIs (read with ``ignore_missing_paths``) give no row: the caller names them at the end.
    """
    import ray.data

    from fkd.realtime.batch.remote_listing import normal_uri

    parts: list[Any] = []
    local = [p for p in photos if p.path is not None]
    if local:
        rows = [{"read": os.fsencode(p.path.absolute()), "key": os.fsencode(p.key), "name": os.fsencode(p.name),
                 "data": b""} for p in local if p.path is not None]
        parts.append(ray.data.from_items(rows, override_num_blocks=max(1, min(-(-len(rows) // BATCH), 2000))))
    groups: dict[str, tuple[Any, list[str]]] = {}
    for photo in photos:
        if photo.uri is not None:
            filesystem, prefix, path = normal_uri(photo.uri)
            groups.setdefault(prefix, (filesystem, []))[1].append(path)
    for prefix, (filesystem, paths) in groups.items():
        read = ray.data.read_binary_files(paths, filesystem=filesystem, include_paths=True, ignore_missing_paths=True,
                                          num_cpus=READ_CPUS)
        as_rows: Any = _as_rows  # Ray's stubs do not know a function with keyword arguments (fn_kwargs)
        parts.append(read.map_batches(as_rows, fn_kwargs={"prefix": prefix}, batch_format="numpy", num_cpus=READ_CPUS))
    dataset = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    dataset = dataset.map_batches(PhotoActor, fn_constructor_args=(settings,), batch_size=BATCH,
                                  batch_format="numpy", concurrency=actors, num_cpus=ACTOR_CPUS)
    batches = dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0)
    try:
        for batch in batches:
            for key, line, faces in zip(batch["key"], batch["line"], batch["faces"]):
                yield os.fsdecode(bytes(key)), str(line), int(faces)
            if stop:
                return
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


_video_workers: dict[VideoSettings, Any] = {}


def _video_task(settings: VideoSettings, job: VideoJob) -> VideoResult:
    """One video on a Ray worker; the weights load once per worker process, whatever it runs next."""
    from fkd.realtime.batch.video_work import VideoWorker

    if settings not in _video_workers:
        _video_workers.clear()
        _video_workers[settings] = VideoWorker(settings)
    result: VideoResult = _video_workers[settings].run(job)
    return result


def videos_on_ray(jobs: Sequence[VideoJob], settings: VideoSettings,
                  stop: StopFlag) -> Iterator[tuple[int, VideoResult]]:
    """(index into ``jobs``, result) as each video's task ends. Once ``stop`` is raised the tasks
    still queued are cancelled and the running ones interrupted: they leave no file."""
    import ray

    task = ray.remote(num_cpus=1, max_retries=3)(_video_task)
    refs = {task.remote(settings, job): i for i, job in enumerate(jobs)}
    pending = list(refs)
    cancelled = False
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
        for ref in done:
            try:
                yield refs[ref], ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                yield refs[ref], VideoResult(stopped=True)
            except ray.exceptions.RayError as e:  # its worker died more often than the retries allow
                yield refs[ref], VideoResult(error=f"{jobs[refs[ref]].shown}: its Ray task failed ({first_line(e)}).")
        if stop and not cancelled:
            cancelled = True
            for ref in pending:
                ray.cancel(ref)
