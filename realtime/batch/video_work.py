"""One video in, its own JSON-lines file out: the unit of work of fkd-live with several videos.

A video is never split: tracking carries each face from frame to frame, so one worker reads the
whole file, in order, through the same pipeline and frame loop as ``fkd-live --video FILE
--headless --export FILE``, and writes the same lines. The file is written to a temporary under
a lock and renamed to ``DIR/<video's name>.jsonl`` only when the last frame is in, so a file with
that name is always complete: a rerun skips it, and a worker stopped or killed mid-video leaves
nothing that looks done. The same object runs in the local pool (realtime/batch/parallel.py) and in
Ray tasks (realtime/batch/ray_jobs.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fkd.model.errors import FkdError, UsageError
from fkd.model.io.files import atomic_path
from fkd.model.io.outputs import OutputLock
from fkd.model.io.paths import shown
from fkd.realtime.batch.photo_work import load_predictor
from fkd.realtime.defaults import FOV as DEFAULT_FOV


@dataclass(frozen=True)
class VideoSettings:
    """fkd-live's options that shape a video's records (the rest do not apply to a batch)."""

    weights: Path | None
    threads: int
    flip: bool
    threshold: float | None
    min_face: int
    max_faces: int
    detect_every: int
    smooth: bool = True
    fov: float = DEFAULT_FOV  # the camera's vertical field of view, for the head pose (--fov)


@dataclass(frozen=True)
class VideoJob:
    """A video and the JSON-lines file it gets; paths as bytes, so any name travels to a worker."""

    video: bytes
    export: bytes

    @property
    def shown(self) -> str:
        return shown(os.fsdecode(self.video))


@dataclass(frozen=True)
class VideoResult:
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    error: str = ""  # the one sentence why this video gave no file (the others go on)
    stopped: bool = False  # stopped by a signal before its end: no file written


class _Stopped(Exception):
    pass


def export_name(video: Path) -> str:
    """``clip.mp4`` -> ``clip.jsonl``: each video's file is named after it."""
    return Path(video.name).stem + ".jsonl"


def plan_videos(videos: Sequence[Path], export: Path, weights: Path | None) -> tuple[list[VideoJob], int]:
    """(the jobs still to do, how many videos are already done), after refusing what cannot work.

    ``export`` is a folder; a video whose file is already there (complete: it is renamed into
    place only when whole) is done.
    """
    if export.exists() and not export.is_dir():
        raise UsageError(f"--export {shown(export)} is a file; with several videos --export names a folder, "
                         f"which gets one JSON-lines file per video.")
    if export.suffix.lower() in (".jsonl", ".json") and not export.exists():
        raise UsageError(f"--export {shown(export)}: with several videos --export names a folder (one JSON-lines "
                         f"file per video), not a .jsonl file.")
    targets: dict[str, Path] = {}
    inputs = {p.resolve() for p in [*videos, *([weights] if weights else [])]}
    jobs, done = [], 0
    for video in videos:
        name = export_name(video)
        if name in targets:
            raise UsageError(f"--video {shown(targets[name])} and {shown(video)} would both write "
                             f"{shown(export / name)}; rename one of them.")
        targets[name] = video
        target = export / name
        if target.resolve() in inputs:
            raise UsageError(f"--export {shown(target)} is also an input; writing it would destroy the input.")
        if target.is_file():
            done += 1
            continue
        jobs.append(VideoJob(os.fsencode(video.absolute()), os.fsencode(target.absolute())))
    return jobs, done


class VideoWorker:
    """The network, loaded once per process; ``run`` turns one video into its file."""

    #: set by the local pool: True once the command has been told to stop (a signal)
    should_stop: Callable[[], bool] = staticmethod(lambda: False)

    def __init__(self, settings: VideoSettings) -> None:
        self.settings = settings
        self.predictor = load_predictor(settings.weights, settings.threads, settings.flip)

    def run(self, job: VideoJob) -> VideoResult:
        try:
            return self._run(job)
        except FkdError as error:
            return VideoResult(error=str(error))
        except _Stopped:
            return VideoResult(stopped=True)

    def _run(self, job: VideoJob) -> VideoResult:
        from fkd.realtime.live import Prefetch, read_ahead
        from fkd.realtime.outputs.records import frame_record, record_json
        from fkd.realtime.sources.video import open_video
        from fkd.realtime.tracking.pipeline import StageTimes, live_pipeline
        from fkd.realtime.tracking.smooth import OneEuroParams

        s = self.settings
        target = Path(os.fsdecode(job.export))
        start = time.monotonic()
        frames = faces = 0
        with OutputLock(target, "--export"), atomic_path(target) as tmp:
            source = open_video(Path(os.fsdecode(job.video)))
            pipeline = live_pipeline(self.predictor, False, max_faces=s.max_faces, detect_every=s.detect_every,
                                     min_face=s.min_face, smoothing=OneEuroParams() if s.smooth else None,
                                     threshold=s.threshold, fov=s.fov)
            reader = Prefetch(source)
            times = StageTimes()
            try:
                with tmp.open("w", encoding="utf-8") as out:
                    # fkd-live's loop on a file, less the drawing: the same records
                    for frame, later in read_ahead(reader, pipeline.tracker.detection.pacing.lag_frames):
                        assert frame.gray is not None
                        found = pipeline.process(frame.gray, frame.index, frame.time, times, image=frame.image,
                                                 ahead=later.image if later is not None else None,
                                                 ending=later is None)
                        out.write(record_json(frame_record(frame.index, frame.time, found)) + "\n")
                        frames += 1
                        faces += len(found)
                        if self.should_stop():
                            raise _Stopped
            except OSError as e:
                raise FkdError(f"--export {shown(target)}: cannot write it ({e.strerror}).") from None
            finally:
                pipeline.tracker.close()
                reader.close()
                source.close()
        return VideoResult(frames, faces, time.monotonic() - start)
