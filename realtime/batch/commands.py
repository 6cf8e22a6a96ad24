"""What fkd-predict and fkd-live run for batch work: many photos or videos, on local processes or Ray.

realtime/cli.py declares the options and hands over to these functions, so the command-line
module stays a thin layer. Each function checks everything it can before any work starts (the
first problem is reported in one sentence, as everywhere in fkd), then runs the work with a
progress bar, prints one summary line and returns the exit code: 0 done, 3 done but some inputs
could not be read, 1 none could, 128 + N stopped by signal N (model/errors.py, model/io/signals.py).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import typer

from fkd.model.errors import EXIT_PARTIAL, FkdError, UsageError
from fkd.model.extras import require_ray_extra
from fkd.model.io.paths import check_output_folder, make_folder, shown
from fkd.model.io.signals import StopFlag, stop_on_signals
from fkd.realtime.batch.expand import expand_photos, expand_videos
from fkd.realtime.batch.parallel import PHOTOS_PER_WORKER, WorkerPool, pool_size, usable_cores
from fkd.realtime.batch.photo_work import PhotoResult, PhotoSettings, PhotoWorker, load_predictor
from fkd.realtime.batch.ray_option import check_address
from fkd.realtime.batch.video_work import VideoJob, VideoResult, VideoSettings, VideoWorker, plan_videos
from fkd.realtime.progress import progress_bar


def photo_results(photos: Sequence[tuple[Path, Path]], worker: PhotoWorker, workers: int | None,
                  stop: StopFlag) -> Iterator[tuple[Path, PhotoResult]]:
    """(photo, result) in the order of ``photos``: in this process with ``worker``, or spread over a
    pool of processes that each build their own from the same settings. Stops handing out photos
    once ``stop`` is raised; the photos in flight still come back."""
    size = pool_size(workers, len(photos), PHOTOS_PER_WORKER)
    if size == 1:
        for path, name in photos:
            if stop:
                return
            yield path, worker.photo(path, name)
        return
    with WorkerPool(PhotoWorker, (worker.settings,), size) as pool:
        calls = ((path, name) for path, name in photos)
        yield from zip((p for p, _ in photos), pool.ordered("photo", calls, stop))


@contextlib.contextmanager
def signals_around_ray(address: str, cpus: int) -> Iterator[tuple[StopFlag, int]]:
    """A Ray session, then fkd's signal handling on top of the handler ``ray.init`` installs for SIGTERM.

    While Ray starts (seconds, or long for a cluster that does not answer) the signals keep their
    usual effect, since nothing is half-written yet: Ctrl-C then comes back as a stop before any
    work (the caller does nothing), SIGTERM ends the process.
    """
    from fkd.realtime.batch.ray_jobs import ray_session

    with contextlib.ExitStack() as stack:
        try:
            available = stack.enter_context(ray_session(address, cpus))
        except KeyboardInterrupt:
            stopped = StopFlag()
            stopped.signum = signal.SIGINT
            yield stopped, 0
            return
        yield stack.enter_context(stop_on_signals()), available


def ray_photos(sources: Sequence[str], address: str, workers: int | None, output: Path | None,
               export: Path | None, settings: PhotoSettings) -> int:
    """``fkd-predict SOURCE --ray [ADDRESS]``: the photos through Ray Data, records into shards in
    ``export``, annotated copies into ``output``; a rerun does only what is not done yet."""
    from fkd.realtime.batch.ray_jobs import BATCH, photos_on_ray
    from fkd.realtime.batch.shards import ShardWriter, done_images
    from fkd.realtime.outputs.records import error_record, record_json

    check_address(address)
    require_ray_extra()
    if export is None and output is None:
        raise UsageError("--ray writes its results to --export DIR (JSON-lines shards) and/or --output DIR "
                         "(annotated copies); give at least one.")
    local_sources = [Path(s) for s in sources if "://" not in s]
    if export is not None:
        if export.exists() and not export.is_dir():
            raise UsageError(f"--export {shown(export)} is a file; with --ray --export names a folder, which gets "
                             f"the records as JSON-lines shards.")
        target = export.resolve()
        for source in local_sources:
            if source.is_dir() and (target == source.resolve() or source.resolve() in target.parents):
                raise UsageError(f"--export {shown(export)} is inside the input folder {shown(source)}; keep the "
                                 f"shards apart from the photos, in a folder outside it.")
    if output is not None:
        check_output_folder("--output", output, local_sources)
    load_predictor(settings.weights, settings.threads, settings.flip)  # bad weights: one sentence, before Ray starts
    photos = expand_photos(sources, remote=True)
    if not photos:
        raise FkdError("no image files found in the paths given.")
    if output is not None:
        for photo in photos:
            if photo.path is not None and (output / photo.name).resolve() == photo.path.resolve():
                raise UsageError(f"--output {shown(output)} would overwrite the input {shown(photo.path)}; "
                                 f"choose another folder.")
    if export is not None:
        done = done_images(export)
    else:  # no records to go by: a photo is done when its annotated copy is there (written atomically)
        assert output is not None
        done = {p.key for p in photos if (output / p.name).is_file()}
    pending = [p for p in photos if p.key not in done]
    settings = PhotoSettings(settings.weights.absolute() if settings.weights else None, settings.threads,
                             settings.flip, settings.threshold, settings.min_face, settings.labels,
                             output.absolute() if output is not None else None)
    images = faces = bad = 0
    actors = 0
    writer = ShardWriter(export) if export is not None else None
    try:
        if pending:
            with signals_around_ray(address, workers or usable_cores()) as (stop, cpus), \
                    progress_bar("photos", len(pending)) as advance:
                actors = max(1, min(workers or cpus, -(-len(pending) // BATCH)))
                seen: set[str] = set()
                for key, line, found in [] if stop else photos_on_ray(pending, settings, actors, stop):
                    if key in seen:  # a retried batch's photo: its first record stands
                        continue
                    seen.add(key)
                    if writer is not None:
                        writer.write(line)
                    if found < 0:
                        bad += 1
                        typer.echo(f"warning: skipping {key}: {_why(line)}.", err=True)
                    else:
                        images += 1
                        faces += found
                    advance(1)
                if not stop:  # URIs that Ray Data found missing give no row: each gets its error record here
                    for photo in pending:
                        if photo.key not in seen:
                            bad += 1
                            typer.echo(f"warning: skipping {photo.key}: no such file.", err=True)
                            if writer is not None:
                                writer.write(record_json(error_record(photo.key, "no such file")))
        else:
            stop = StopFlag()
    finally:
        if writer is not None:
            writer.close()
    how = f"on Ray, {actors} workers" if pending else "nothing to do"
    typer.echo(f"fkd-predict: {images} images, {faces} faces, {bad} skipped, {len(photos) - len(pending)} already "
               f"done ({how}).", err=True)
    if stop:
        left = len(pending) - images - bad
        typer.echo(f"fkd-predict: {stop.note(f'{left} photos not processed; a rerun does them')}", err=True)
        return stop.exit_code
    if bad and images == 0 and not done:
        raise FkdError(f"none of the {bad} inputs could be read as an image.")
    return EXIT_PARTIAL if bad else 0


def _why(line: str) -> str:
    import json

    return str(json.loads(line).get("error", "not a readable image"))


def video_batch(videos: Sequence[str], address: str | None, workers: int | None, export: str | None,
                output: Path | None, settings: VideoSettings) -> int:
    """fkd-live with several videos (or ``--ray``): one JSON-lines file per video in ``export``, the
    videos in parallel (processes, or Ray tasks); a rerun skips the videos whose file is there."""
    if address is not None:
        check_address(address)
        require_ray_extra()
    if output is not None:
        raise UsageError("--output writes one annotated video; with several videos or --ray give --export DIR "
                         "only (one JSON-lines file per video).")
    if export is None or export == "-" or "://" in export:
        raise UsageError("several videos (or --ray) need --export DIR: each video gets its own JSON-lines file "
                         "there, named after it.")
    folder = Path(export)
    paths = expand_videos(videos)
    if not paths:
        raise FkdError("no video files found in the paths given.")
    jobs, done = plan_videos(paths, folder, settings.weights)
    load_predictor(settings.weights, settings.threads, settings.flip)  # bad weights: one sentence, before any work
    make_folder(folder, "--export")
    if settings.weights is not None:
        settings = VideoSettings(settings.weights.absolute(), settings.threads, settings.flip, settings.threshold,
                                 settings.min_face, settings.max_faces, settings.detect_every, settings.smooth)
    frames = faces = failed = finished = 0
    stopped = StopFlag()
    how = "nothing to do"
    if jobs:
        with contextlib.ExitStack() as stack:
            if address is not None:
                from fkd.realtime.batch.ray_jobs import videos_on_ray

                stop, cpus = stack.enter_context(signals_around_ray(address, workers or usable_cores()))
                results = iter(()) if stop else videos_on_ray(jobs, settings, stop)
                how = f"as Ray tasks on {cpus} CPUs"
            else:
                stop = stack.enter_context(stop_on_signals())
                size = pool_size(workers, len(jobs))
                results = _videos_locally(jobs, settings, size, stop, stack)
                how = f"{size} process{'es' if size > 1 else ''}"
            advance = stack.enter_context(progress_bar("videos", len(jobs)))
            for index, result in results:
                if result.error:
                    failed += 1
                    typer.echo(f"warning: skipping {jobs[index].shown}: {result.error}", err=True)
                elif not result.stopped:
                    finished += 1
                    frames += result.frames
                    faces += result.faces
                advance(1)
            stopped = stop
    typer.echo(f"fkd-live: {finished} videos, {frames} frames, {faces} faces, {failed} skipped, {done} already "
               f"done ({how}); one JSON-lines file per video in {shown(folder)}.", err=True)
    if stopped:
        left = len(jobs) - finished - failed
        note = stopped.note(f"{left} videos not finished, none of them half-written; a rerun does them")
        typer.echo(f"fkd-live: {note}", err=True)
        return stopped.exit_code
    if failed and finished == 0 and not done:
        raise FkdError(f"none of the {failed} videos could be read.")
    return EXIT_PARTIAL if failed else 0


def _videos_locally(jobs: Sequence[VideoJob], settings: VideoSettings, size: int, stop: StopFlag,
                    stack: contextlib.ExitStack) -> Iterator[tuple[int, VideoResult]]:
    """(index, result) per video: in this process when one worker is enough, else in a pool."""
    if size > 1:
        pool = stack.enter_context(WorkerPool(VideoWorker, (settings,), size))
        return pool.unordered("run", [(job,) for job in jobs], stop)
    worker = VideoWorker(settings)
    worker.should_stop = lambda: bool(stop)

    def one_by_one() -> Iterator[tuple[int, VideoResult]]:
        for i, job in enumerate(jobs):
            if stop:
                return
            yield i, worker.run(job)

    return one_by_one()
