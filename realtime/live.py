"""The fkd-live loop: read, detect or track, crop, model, draw, then write, export or show.

Three threads share the work, because on 2 cores one thread would leave a core idle (cv2
decoding, YuNet's detection and onnxruntime all release the GIL):
- the reader decodes and converts to grey, a couple of frames ahead ("decode" in the summary);
- the detector worker runs candidate passes when one is due ("detector", realtime/tracking/detection.py);
- the loop itself crops, runs the model, tracks and draws. Its wait for the next frame is
  "read", and "detect" is what detection costs the loop itself: handing a request over, and
  on a video file the waits for a result that is due but not done (counted in the summary).
"""

from __future__ import annotations

import collections
import contextlib
import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fkd.model.io.signals import stop_on_signals
from fkd.realtime.clock import Clock, now
from fkd.realtime.outputs.draw import RollingFps, draw_faces, draw_fps, mirrored
from fkd.realtime.outputs.records import Face, frame_record
from fkd.realtime.outputs.sinks import Sink, open_sink
from fkd.realtime.outputs.video_file import VideoFile
from fkd.realtime.outputs.window import ViewState, Window, display_problem, save_snapshot
from fkd.realtime.sources.live import LiveSource
from fkd.realtime.sources.video import Frame, VideoSource
from fkd.realtime.state.pose import DEFAULT_FOV
from fkd.realtime.timing import Reservoir
from fkd.realtime.tracking.pipeline import LivePipeline, StageTimes

if TYPE_CHECKING:  # http.server costs a run without --serve 40 ms of start-up: imported when serving
    from fkd.realtime.outputs.serve import LiveServer
    from fkd.realtime.outputs.serve_address import ServeAddress
    from fkd.realtime.outputs.vmc import FaceChoice, HeadState, VmcSender  # python-osc: 60 ms, loaded with --vmc


def open_writer(path: Path, fps: float, width: int, height: int) -> VideoFile:
    """An mp4v .mp4 or MJPG .avi writer with the source's fps and size (locked, atomic: outputs/video_file.py)."""
    return VideoFile(path, fps, width, height)


class Prefetch:
    """Frames of a source decoded in a background thread, ``depth`` frames ahead."""

    def __init__(self, source: VideoSource, depth: int = 2, clock: Clock = now) -> None:
        self._source = source
        self._clock = clock
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.decode_times = Reservoir()
        self._thread = threading.Thread(target=self._run, name="fkd-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        frames = iter(self._source)
        try:
            while not self._stop.is_set():
                t0 = self._clock()
                frame = next(frames, None)
                if frame is not None:
                    frame.gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
                    self.decode_times.append(self._clock() - t0)
                while not self._stop.is_set():
                    try:
                        self._queue.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if frame is None:
                    return
        except Exception:  # a broken stream ends the stream; the loop finalises its outputs
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=1.0)

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class Inline:
    """The same frames decoded in the loop's own thread."""

    def __init__(self, source: VideoSource) -> None:
        self._source = source
        self.decode_times = Reservoir()

    def __iter__(self) -> Iterator[Frame]:
        for frame in self._source:
            if frame.gray is None:  # a LiveSource's reader thread has converted it already
                frame.gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
            yield frame

    def close(self) -> None:
        pass


def read_ahead(frames: Iterable[Frame], count: int) -> Iterator[tuple[Frame, Frame | None]]:
    """Each frame with the one ``count`` frames after it (None past the end, or when ``count``
    is 0): the loop holds ``count`` decoded frames more than it processes."""
    if count <= 0:
        for frame in frames:
            yield frame, None
        return
    window: collections.deque[Frame] = collections.deque()
    for frame in frames:
        window.append(frame)
        if len(window) > count:
            yield window.popleft(), frame
    while window:
        yield window.popleft(), None


@dataclass
class LiveSummary:
    """What the exit summary reports."""

    source: str
    frames: int = 0
    frames_with_face: int = 0
    faces: int = 0
    seconds: float = 0.0
    detections: int = 0  # detection requests
    detection_waits: int = 0  # results the loop had to wait for (video files only)
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)
    expected: int | None = None  # frames the file header announces
    quit: bool = False  # stopped with q/Esc
    stopped_by: str = ""  # the signal (SIGTERM, SIGINT, SIGHUP) that ended the run, if one did
    notes: list[str] = field(default_factory=list)  # the source's and the export's own lines (drops, reconnects)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_faces(self) -> float:
        return self.faces / self.frames if self.frames else 0.0


@dataclass
class LiveConfig:
    output: Path | None = None
    export: Path | str | None = None  # a file, "-" (standard output) or udp://HOST:PORT (realtime/outputs/sinks.py)
    headless: bool = False
    mirror: bool = False
    labels: bool = False
    progress: bool = False
    prefetch: bool = True  # decode in a reader thread (off: inline, for measuring what it buys)
    serve: ServeAddress | None = None  # --serve: the page, frames and records over HTTP (outputs/serve.py)
    axes: bool = True  # draw each face's head axes (--no-axes; the a key toggles them)
    fov: float = DEFAULT_FOV  # the camera's vertical field of view: the pose's camera model (--fov)
    vmc: tuple[str, int] | None = None  # --vmc: one face's head and expressions to avatar apps (outputs/vmc.py)
    vmc_mirror: bool = False  # --vmc-mirror: send the mirror image, as avatar apps usually show


def choose_window(headless: bool, state: ViewState) -> Window | None:
    """A window, or None with a one-line notice when no display can show it."""
    if headless:
        return None
    problem = display_problem()
    if problem:
        print(f"fkd-live: {problem}; running headless.", file=sys.stderr)
        return None
    return Window(state)


class Outputs:
    """Where each processed frame goes: the drawn view, the export, the video file, the window."""

    def __init__(self, source: VideoSource, config: LiveConfig, state: ViewState) -> None:
        self.config, self.state, self.width = config, state, source.width
        self.height = source.height
        self.writer = self.window = None
        self.exporter: Sink | None = None
        self.server: LiveServer | None = None
        self.vmc: VmcSender | None = None
        self.vmc_face: FaceChoice | None = None
        self.arrived = 0.0  # when the loop got the frame being processed (--serve's latency)
        self.fps = RollingFps(30)
        try:
            if config.output:
                self.writer = open_writer(config.output, source.fps, source.width, source.height)
            if config.export:
                self.exporter = open_sink(config.export)
            self.window = choose_window(config.headless, state)
            if config.serve:
                from fkd.realtime.outputs.serve import LiveServer

                self.server = LiveServer(config.serve, source, config.mirror)
            if config.vmc:
                from fkd.realtime.outputs.vmc import FaceChoice, VmcSender

                self.vmc = VmcSender(*config.vmc, mirror=config.vmc_mirror)
                self.vmc_face = FaceChoice()
        except BaseException:
            self.close()
            raise

    def draw(self, frame: Frame, faces: list[Face]) -> np.ndarray:
        if self.server:  # the page draws its own keypoints: it gets the frame before drawing
            self.server.keep_plain(frame, self.state.mirror)
        view = cv2.flip(frame.image, 1) if self.state.mirror else frame.image
        draw_faces(view, mirrored(faces, self.width) if self.state.mirror else faces, self.config.labels,
                   self.state.axes, self.config.fov)
        fps = self.fps.tick()
        if self.state.show_fps:
            draw_fps(view, fps)
        return view

    def emit(self, frame: Frame, faces: list[Face], view: np.ndarray) -> bool:
        """Export, write and show one frame; True if anything was done."""
        if self.exporter:
            self.exporter.write(frame_record(frame.index, frame.time, faces))
            if self.exporter.broken:  # the pipe's reader went away: stop as a quit would
                self.state.quit = True
        if self.writer:
            self.writer.write(view)
        if self.window:
            self.window.show(view)
            if self.state.snapshot:
                self.state.snapshot = False
                print(f"fkd-live: saved {save_snapshot(view, frame.index)}", file=sys.stderr)
        if self.server:
            self.server.publish(frame, faces, view, self.arrived)
        if self.vmc:
            self.vmc.send(frame.time, self._vmc_head(faces))
        return bool(self.exporter or self.writer or self.window or self.server or self.vmc)

    def _vmc_head(self, faces: list[Face]) -> HeadState | None:
        """The face the avatar follows (nearest the centre, held while its track lasts), or None."""
        from fkd.realtime.outputs.vmc import HeadState  # loaded with the sender already

        assert self.vmc_face is not None  # made with the sender
        chosen = self.vmc_face.choose([(f.id, f.box) for f in faces], self.width, self.height)
        face = next((f for f in faces if f.id == chosen), None)
        if face is None or face.pose is None or not face.pose.finite:
            return None
        pose = face.pose
        return HeadState(pose.yaw, pose.pitch, pose.roll, pose.position, dict(face.expression))

    def close(self) -> None:
        """Finalise the files: a video released here is playable up to its last frame."""
        if self.writer:
            self.writer.release()
        if self.exporter:
            self.exporter.close()
        if self.window:
            self.window.close()
        if self.server:
            self.server.close()
        if self.vmc:
            self.vmc.close()


def run_live(source: VideoSource, pipeline: LivePipeline, config: LiveConfig, clock: Clock = now) -> LiveSummary:
    """Process the whole stream (or until q, Esc or Ctrl-C); outputs are finalised however it ends."""
    summary = LiveSummary(source.name)
    state = ViewState(mirror=config.mirror, axes=config.axes)
    times = StageTimes(clock)
    outputs = frames = progress = None
    try:
        outputs = Outputs(source, config, state)
        progress = _progress(source) if config.progress and outputs.window is None else None
        # a live source has its own newest-frame reader; a queue here would only add latency
        prefetch = config.prefetch and not isinstance(source, LiveSource)
        frames = Prefetch(source, clock=clock) if prefetch else Inline(source)
        # a file is read ahead by the detection's lag, so each request is made on the frame it is
        # merged into (realtime/tracking/detection.py); a live source is never held back
        ahead = 0 if source.live else pipeline.tracker.detection.pacing.lag_frames
        start = clock()
        times.start()
        with contextlib.suppress(KeyboardInterrupt), stop_on_signals() as stop:
            for frame, later in read_ahead(frames, ahead):
                times.lap("read")
                outputs.arrived = clock()
                assert frame.gray is not None  # Prefetch and Inline convert every frame to grey
                faces = pipeline.process(frame.gray, frame.index, frame.time, times, image=frame.image,
                                         ahead=later.image if later is not None else None,
                                         ending=ahead > 0 and later is None)
                view = outputs.draw(frame, faces)
                times.lap("draw")
                if outputs.emit(frame, faces, view):
                    times.lap("write")
                summary.frames += 1
                summary.frames_with_face += bool(faces)
                summary.faces += len(faces)
                if progress:
                    progress[0].update(progress[1], completed=summary.frames)
                if state.quit or stop:  # a signal: finish this frame, then finalise every output
                    summary.stopped_by = stop.name
                    break
        summary.seconds = clock() - start
    finally:
        pipeline.tracker.close()
        if frames:
            frames.close()
            if frames.decode_times:
                times.times["decode"] = frames.decode_times
        if pipeline.tracker.detection.seconds.count:
            times.times["detector"] = pipeline.tracker.detection.seconds
        if progress:
            progress[0].stop()
        if outputs:
            outputs.close()
        source.close()
    summary.notes = source.notes() + (outputs.exporter.notes() if outputs and outputs.exporter else [])
    summary.notes += outputs.server.notes() if outputs and outputs.server else []
    summary.notes += outputs.vmc.notes() if outputs and outputs.vmc else []
    summary.detections = pipeline.tracker.detection.calls
    summary.detection_waits = pipeline.tracker.detection.waits
    summary.expected = source.frame_count
    summary.quit = state.quit
    summary.stages = times.summary()
    return summary


def _progress(source: VideoSource):
    """A rich progress bar of frames processed, on stderr (headless runs on a file)."""
    if source.live:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("frames"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    task = progress.add_task("frames", total=source.frame_count)
    progress.start()
    return progress, task


def summary_lines(summary: LiveSummary) -> list[str]:
    """The exit summary as plain lines (stderr), shared by fkd-live and the benchmark."""
    share = 100 * summary.frames_with_face / max(summary.frames, 1)
    lines = [
        f"{summary.source}: {summary.frames} frames read, {summary.frames_with_face} with a face ({share:.1f} %), "
        f"{summary.mean_faces:.2f} faces per frame, {summary.detections} detector runs "
        f"({summary.detection_waits} waited for), {summary.fps:.1f} fps overall",
        f"{'stage':<10}{'median ms':>11}{'p95 ms':>9}",
    ]
    for stage, (median, p95) in summary.stages.items():
        note = "  (own thread, overlaps the loop)" if stage in ("decode", "detector") else ""
        lines.append(f"{stage:<10}{median:>11.2f}{p95:>9.2f}{note}")
    if summary.stopped_by:
        lines.append(f"stopped by {summary.stopped_by} after {summary.frames} frames; the outputs hold them all.")
    elif summary.expected and summary.frames < summary.expected and not summary.quit:
        lines.append(f"note: the video ended after {summary.frames} of the {summary.expected} frames its header "
                     f"announces (cut short or damaged); the outputs hold the frames read.")
    lines.extend(summary.notes)
    return lines
