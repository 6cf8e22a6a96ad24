"""fkd-live and fkd-predict: the command lines of the real-time app.

Bad input of any kind ends in one sentence on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fkd.model.cli_common import FLIP_HELP, MAX_THREADS, deprecated, reported_errors
from fkd.model.errors import EXIT_PARTIAL, FkdError, UsageError
from fkd.model.io.signals import stop_on_signals
from fkd.model.ranges import MAX_FRAME_SIDE, require_number
from fkd.realtime.batch.ray_option import RAY_HELP, RayOptionCommand
from fkd.realtime.defaults import DETECT_EVERY, FOV, MAX_CAMERA, MAX_FACES, MIN_FACE, RECONNECTS, STREAM_TIMEOUT

if TYPE_CHECKING:
    from fkd.model.artifact import Predictor

# cv2, numpy, onnxruntime and the pipeline load inside the commands, so --help shows as fast as
# typer alone and the model's imports are paid only by a run (bench/startup.py).

#: One thread for the model and OpenCV: measured faster than two on 2 cores (bench/RESULTS.md),
#: because decoding and detection already run in their own threads.
THREADS = 1

live_app = typer.Typer(add_completion=False, rich_markup_mode="rich", pretty_exceptions_enable=False,
                       help="Facial keypoints live, on a camera or a video file.")
predict_app = typer.Typer(add_completion=False, rich_markup_mode="rich", pretty_exceptions_enable=False,
                          help="Facial keypoints on photos.")

WeightsOption = Annotated[Path | None, typer.Option(
    "--weights", help="fkd weights file (.pt, with its .onnx twin beside it if any). Default: the shipped model.",
    show_default=False)]
ThreadsOption = Annotated[int, typer.Option("--threads", min=1, max=MAX_THREADS,
                                            help="CPU threads for the model and OpenCV.")]
ThresholdOption = Annotated[float | None, typer.Option(
    "--threshold", min=0.0, max=1.0, help="Face score (0..1) a crop needs to count as a face. "
    "Default: the threshold calibrated with the weights (0.5 if they have none).", show_default=False)]


FlipOption = Annotated[bool, typer.Option("--flip/--no-flip", help=FLIP_HELP)]
MinFaceOption = Annotated[int, typer.Option(
    "--min-face", min=8, max=MAX_FRAME_SIDE, metavar="PX",
    help="Smallest face side to look for, in pixels of the frame; larger is faster (the detector sees a "
    "smaller frame).")]


FovOption = Annotated[float, typer.Option(
    "--fov", min=1.0, max=179.0, metavar="DEG", help="The camera's vertical field of view in degrees: the camera "
    "model of each face's head pose and position (the default is MediaPipe's, so that the two compare).")]


WorkersOption = Annotated[int | None, typer.Option(
    "--workers", min=1, max=1024, help="Processes to spread the work over, each loading the model once (with "
    "--ray: Ray workers). Default: the usable cores, as far as the work repays starting them.", show_default=False)]
RayOption = Annotated[str | None, typer.Option("--ray", metavar="[ADDRESS]", help=RAY_HELP, show_default=False)]


PointsOption = Annotated[int | None, typer.Option(
    "--points", metavar="15|68", help="Which shipped model: 15 (Kaggle's keypoints, the default) or 68 (iBUG's "
    "points on the whole face: jaw, eye and lip contours, exported as points68 beside the 15 they give). With "
    "--weights, the file must predict that many.", show_default=False)]


def weights_for_points(weights: Path | None, points: int | None) -> Path | None:
    """The weights a run takes for ``--points``: the shipped model of that many points when no
    ``--weights`` is given; with ``--weights``, that file, refused in one sentence when it predicts
    another number of points. Checked before anything else, so every path (one video, a batch,
    Ray) gets the same answer; the pipelines then follow the weights' own metadata."""
    if points is None:
        return weights
    if points not in (15, 68):
        raise UsageError(f"--points must be 15 or 68, not {points}.")
    from fkd.model.metadata import default_weights

    if weights is None:
        return default_weights(points) if points != 15 else None
    from fkd.model.artifact import read_metadata
    from fkd.model.metadata import point_set_of

    count = point_set_of(read_metadata(weights), weights).count
    if count != points:
        raise UsageError(f"--points {points} needs a {points}-point weights file, and {weights} predicts "
                         f"{count} points.")
    return weights


def make_predictor(weights: Path | None, threads: int, flip: bool) -> Predictor:
    import cv2

    from fkd.model.artifact import Predictor

    cv2.setNumThreads(threads)
    return Predictor(weights, threads=threads, flip=flip)


@live_app.command(cls=RayOptionCommand,
                  epilog="Example: fkd-live --video ../shared/video/talking_head_512.mp4 --headless "
                        "--export keypoints.jsonl -o annotated.mp4")
def live(
    camera: Annotated[str | None, typer.Option(
        "--camera", help=f"Camera index 0..{MAX_CAMERA} or device path such as /dev/video2 (the default source "
        "is camera 0).", show_default=False)] = None,
    video: Annotated[str | None, typer.Option(
        "--video", help="Read this video file, or this network stream (rtsp://, rtsps://, http://, https://, "
        "udp://; live like a camera), instead of a camera. A folder, a quoted glob ('clips/*.mp4') or several files "
        "run each video to its own file in --export DIR.", show_default=False)] = None,
    weights: WeightsOption = None,
    points: PointsOption = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the annotated video: .mp4 (mp4v) or .avi (MJPG), at the source's fps and size.",
        show_default=False)] = None,
    export: Annotated[str | None, typer.Option(
        "--export", help="Write keypoints as JSON lines, one per frame processed (faces may be empty): to a file, "
        "to standard output with - (progress and summary go to stderr), or one datagram per frame to "
        "udp://HOST:PORT. With several videos or --ray: a folder, with one file per video, named after it.",
        show_default=False)] = None,
    headless: Annotated[bool, typer.Option("--headless", help="No window (automatic when no display).")] = False,
    max_faces: Annotated[int, typer.Option("--max-faces", min=1, max=256, help="Most faces tracked at once.")
                         ] = MAX_FACES,
    min_face: MinFaceOption = MIN_FACE,
    detect_every: Annotated[int, typer.Option(
        "--detect-every", min=1, help="On a video file, look for new faces every N frames while faces are "
        "tracked (every 3 while none are).")
    ] = DETECT_EVERY,
    no_smooth: Annotated[bool, typer.Option("--no-smooth", help="Raw keypoints, without the One Euro filter.")]
    = False,
    width: Annotated[int | None, typer.Option("--width", min=1, max=MAX_FRAME_SIDE,
                                              help="Camera frame width to ask for.",
                                              show_default=False)] = None,
    height: Annotated[int | None, typer.Option("--height", min=1, max=MAX_FRAME_SIDE,
                                               help="Camera frame height to ask for.",
                                               show_default=False)] = None,
    mirror: Annotated[bool, typer.Option("--mirror", help="Mirror the view (window and --output); "
                                                          "--export keeps original pixels.")] = False,
    labels: Annotated[bool, typer.Option("--labels", help="Write keypoint names beside the points.")] = False,
    threads: ThreadsOption = THREADS,
    threshold: ThresholdOption = None,
    fps: Annotated[float | None, typer.Option("--fps", min=1.0, max=240.0, help="Camera frame rate to ask for.",
                                              show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.5, max=600.0,
                                           help="Seconds a stream or camera has to open, and a stream to send "
                                                "each frame.")] = STREAM_TIMEOUT,
    reconnect: Annotated[int, typer.Option("--reconnect", min=0, max=1000,
                                           help="Reopen attempts, with backoff, after a stream breaks off.")]
    = RECONNECTS,
    list_cameras: Annotated[bool, typer.Option("--list-cameras", help="List the cameras that open, with their "
                                                                      "size, and exit.")] = False,
    serve: Annotated[str | None, typer.Option(
        "--serve", metavar="[HOST:]PORT", help="While the loop runs, serve a page with the live picture and its "
        "keypoints at http://HOST:PORT/, the annotated frames at /stream.mjpg and the records (the JSON of --export) "
        "as Server-Sent Events at /records. HOST is 127.0.0.1 unless named; any other address needs a token. "
        "PORT 0 takes any free port.", show_default=False)] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="FKD_LIVE_TOKEN", help="The token --serve requires, as ?token=... or Authorization: Bearer "
        "(8 to 256 letters, digits, - _ . ~). Default: none on 127.0.0.1, a random one (printed at start) on any "
        "other address.", show_default=False)] = None,
    flip: FlipOption = False,
    fov: FovOption = FOV,
    axes: Annotated[bool, typer.Option("--axes/--no-axes", help="Draw each face's head axes from its nose tip, "
                                       "with its yaw, pitch and roll (the a key toggles them).")] = True,
    vmc: Annotated[str | None, typer.Option(
        "--vmc", metavar="[HOST:]PORT", help="Send one face's head and expressions to an avatar app (VSeeFace, "
        "VNyan, Warudo, VMagicMirror) in the VMC protocol, over UDP: the face nearest the centre, held while it is "
        "tracked. Alone: 127.0.0.1:39539, those apps' default.", show_default=False)] = None,
    vmc_mirror: Annotated[bool, typer.Option("--vmc-mirror", help="Send the mirror image of the head to --vmc, "
                                             "as avatar apps usually show one.")] = False,
    more_videos: Annotated[list[str] | None, typer.Argument(
        metavar="VIDEOS", help="More video files after --video's (a shell glob, say): with several videos, or a "
        "folder or quoted glob as --video, each video gets its own JSON-lines file in --export DIR, and the videos "
        "run in parallel.", show_default=False)] = None,
    workers: WorkersOption = None,
    ray: RayOption = None,
) -> None:
    """Track faces and their 15 keypoints on a camera, a video or a network stream; q or Esc quits.

    Keys in the window: [bold]q[/]/[bold]Esc[/] quit, [bold]space[/] pause, [bold]s[/] save a PNG
    snapshot, [bold]m[/] mirror, [bold]f[/] FPS overlay on/off, [bold]a[/] head axes on/off. With no display
    it runs headless.
    """
    from fkd.realtime.guards import check_live_paths
    from fkd.realtime.live import LiveConfig, run_live, summary_lines
    from fkd.realtime.outputs.serve_address import serve_address
    from fkd.realtime.outputs.sinks import check_network_target, is_network, is_stdout
    from fkd.realtime.sources.camera import open_camera, parse_camera
    from fkd.realtime.sources.network import is_url, open_stream
    from fkd.realtime.sources.video import open_video
    from fkd.realtime.tracking.pipeline import live_pipeline
    from fkd.realtime.tracking.smooth import OneEuroParams

    if list_cameras:
        print_cameras()
        return
    from fkd.realtime.batch.expand import is_video_batch

    with reported_errors():
        weights = weights_for_points(weights, points)
    if is_video_batch(video, more_videos or [], ray):  # several videos: realtime/batch/commands.py
        video_batch_run(video, more_videos or [], ray, workers, export, output, camera, weights, threads, flip,
                        threshold, min_face, max_faces, detect_every, not no_smooth, serve, fov, vmc)
        return
    with reported_errors():
        if video is not None and camera is not None:
            raise UsageError("give either --camera or --video, not both.")
        require_number("--threshold", threshold, 0.0, 1.0)  # typer's range lets NaN through
        require_number("--fov", fov, 1.0, 179.0)
        vmc_address = None
        if vmc is not None:  # python-osc loads only for --vmc
            from fkd.realtime.outputs.vmc import parse_vmc_address

            vmc_address = parse_vmc_address(vmc)
        video_file = Path(video) if video is not None and not is_url(video) else None
        export_file = Path(export) if export is not None and not is_stdout(export) and not is_network(export) else None
        check_live_paths(video_file, weights, output, export_file)
        if export is not None and is_network(export):
            check_network_target(export)
        address = serve_address(serve, token)  # before the model loads: a port in use is refused at once
        camera_id = parse_camera(camera, MAX_CAMERA) if camera is not None else 0
        predictor = make_predictor(weights, threads, flip)
        # the model first: a live source opened before it would drop the frames sent while the model loads
        source = (open_camera(camera_id, width, height, fps, timeout) if video is None
                  else open_stream(video, timeout, reconnect) if video_file is None else open_video(video_file))
        pipeline = live_pipeline(predictor, source.live, max_faces=max_faces, detect_every=detect_every,
                                 min_face=min_face, smoothing=None if no_smooth else OneEuroParams(),
                                 threshold=threshold, fov=fov)
        config = LiveConfig(output=output, export=export, headless=headless, mirror=mirror, labels=labels,
                            progress=True, serve=address, axes=axes, fov=fov, vmc=vmc_address,
                            vmc_mirror=vmc_mirror)
        summary = run_live(source, pipeline, config)
    for line in summary_lines(summary):
        typer.echo(line, err=True)
    if summary.stopped_by and summary.stopped_by != "SIGINT":  # Ctrl-C is how a user quits; others are not
        raise typer.Exit(128 + signal.Signals[summary.stopped_by].value)


def print_cameras() -> None:
    """fkd-live --list-cameras: each camera that opens, with its size; one line when there is none."""
    from fkd.realtime.sources.camera import list_cameras

    cameras = list_cameras()
    if not cameras:
        typer.echo("no camera found: none of the usual ones (/dev/video* on Linux, indices 0..9 elsewhere) "
                   "opened and gave a frame.")
    for camera, width, height in cameras:
        typer.echo(f"camera {camera}: {width}x{height}")


@predict_app.command(cls=RayOptionCommand,
                     epilog="Example: fkd-predict ../shared/data/300w/afw --export faces.jsonl -o annotated/")
def predict(
    paths: Annotated[list[str], typer.Argument(
        metavar="SOURCE", help="Image files, folders (searched recursively), quoted globs ('photos/*/*.jpg'), or "
        "lists (.txt: one path or URI per line; URIs such as s3://... need --ray).", show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for annotated copies of the images.",
                                                show_default=False)] = None,
    export: Annotated[Path | None, typer.Option("--export", metavar="FILE", help="Write one JSON line per image here "
                                                "(with --ray: a folder, which gets JSON-lines shards).",
                                                show_default=False)] = None,
    weights: WeightsOption = None,
    points: PointsOption = None,
    labels: Annotated[bool, typer.Option("--labels", help="Write keypoint names beside the points.")] = False,
    threads: ThreadsOption = THREADS,
    threshold: ThresholdOption = None,
    min_face: MinFaceOption = MIN_FACE,
    json_path: Annotated[Path | None, typer.Option("--json", hidden=True, help="Deprecated name of --export.")]
    = None,
    flip: FlipOption = True,
    fov: FovOption = FOV,
    workers: WorkersOption = None,
    ray: RayOption = None,
) -> None:
    """Find faces and their 15 keypoints in photos, one image at a time (bounded memory).

    Unreadable files are skipped with a warning and counted at the end; the exit code is then 3
    (done, some inputs skipped), and 1 if none could be read. With --workers N the photos are
    spread over N processes and the output is the same, in the same order. With --ray, --export
    and --output name folders (JSON-lines shards, annotated copies), and a rerun does only the
    photos not done yet.
    """
    from fkd.realtime.batch.commands import photo_results, ray_photos
    from fkd.realtime.batch.photo_work import PhotoSettings, PhotoWorker
    from fkd.realtime.guards import plan_photos
    from fkd.realtime.outputs.records import JsonLines
    from fkd.realtime.progress import progress_bar

    with reported_errors():
        weights = weights_for_points(weights, points)
    if ray is not None:
        with reported_errors():
            export = deprecated("--json", json_path, "--export", export)
            require_number("--threshold", threshold, 0.0, 1.0)
            require_number("--fov", fov, 1.0, 179.0)
            code = ray_photos(paths, ray, workers, output, export,
                              PhotoSettings(weights, threads, flip, threshold, min_face, labels, fov=fov))
        raise typer.Exit(code)
    images = faces = skipped = 0
    exporter = None
    with reported_errors(), stop_on_signals() as stop:
        try:
            export = deprecated("--json", json_path, "--export", export)
            # the weights load (and are checked) here, first; a pool's processes each load their own
            require_number("--fov", fov, 1.0, 179.0)
            worker = PhotoWorker(PhotoSettings(weights, threads, flip, threshold, min_face, labels, output, fov))
            require_number("--threshold", threshold, 0.0, 1.0)
            photos = plan_photos(paths, output, export, weights)
            exporter = JsonLines(export) if export else None
            with progress_bar("photos", len(photos)) as advance:
                for path, result in photo_results(photos, worker, workers, stop):  # in input order
                    advance(1)
                    if result.record is None:
                        skipped += 1
                        typer.echo(f"warning: skipping {path}: {result.why}.", err=True)
                        continue
                    images += 1
                    faces += result.faces
                    if exporter:
                        exporter.write(result.record)
            if stop:  # a signal: the photos so far are written and exported, the rest are not
                typer.echo(f"fkd-predict: {stop.note(f'{len(photos) - images - skipped} photos not processed')}",
                           err=True)
            elif images == 0:
                raise FkdError(f"none of the {skipped} inputs could be read as an image." if skipped
                               else "no image files found in the paths given.")
        finally:
            if exporter:
                exporter.close()
    typer.echo(f"fkd-predict: {images} images, {faces} faces, {skipped} skipped.", err=True)
    if stop:
        raise typer.Exit(stop.exit_code)
    if skipped:  # done, but not with every input: a script can tell (model/errors.py)
        raise typer.Exit(EXIT_PARTIAL)


def video_batch_run(video: str | None, more: list[str], ray: str | None, workers: int | None, export: str | None,
                    output: Path | None, camera: str | None, weights: Path | None, threads: int, flip: bool,
                    threshold: float | None, min_face: int, max_faces: int, detect_every: int, smooth: bool,
                    serve: str | None, fov: float = FOV, vmc: str | None = None) -> None:
    """fkd-live with several videos, a folder or glob of them, or --ray: realtime/batch/commands.py."""
    from fkd.realtime.batch.commands import video_batch
    from fkd.realtime.batch.video_work import VideoSettings

    with reported_errors():
        if camera is not None:
            raise UsageError("give either --camera or --video, not both.")
        if serve is not None:
            raise UsageError("--serve shows one source; with several videos or --ray run without it.")
        if vmc is not None:
            raise UsageError("--vmc sends one source's face; with several videos or --ray run without it.")
        require_number("--threshold", threshold, 0.0, 1.0)
        require_number("--fov", fov, 1.0, 179.0)
        settings = VideoSettings(weights, threads, flip, threshold, min_face, max_faces, detect_every, smooth, fov)
        code = video_batch([v for v in [video, *more] if v is not None], ray, workers, export, output, settings)
    if code:
        raise typer.Exit(code)
