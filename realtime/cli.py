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
from fkd.model.ranges import MAX_FRAME_SIDE, require_number
from fkd.model.signals import stop_on_signals
from fkd.realtime.defaults import DETECT_EVERY, MAX_CAMERA, RECONNECTS, STREAM_TIMEOUT

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


def make_predictor(weights: Path | None, threads: int, flip: bool) -> Predictor:
    import cv2

    from fkd.model.artifact import Predictor

    cv2.setNumThreads(threads)
    return Predictor(weights, threads=threads, flip=flip)


@live_app.command(epilog="Example: fkd-live --video ../shared/video/talking_head_512.mp4 --headless "
                        "--export keypoints.jsonl -o annotated.mp4")
def live(
    camera: Annotated[str | None, typer.Option(
        "--camera", help=f"Camera index 0..{MAX_CAMERA} or device path such as /dev/video2 (the default source "
        "is camera 0).", show_default=False)] = None,
    video: Annotated[str | None, typer.Option(
        "--video", help="Read this video file, or this network stream (rtsp://, rtsps://, http://, https://, "
        "udp://; live like a camera), instead of a camera.", show_default=False)] = None,
    weights: WeightsOption = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the annotated video: .mp4 (mp4v) or .avi (MJPG), at the source's fps and size.",
        show_default=False)] = None,
    export: Annotated[str | None, typer.Option(
        "--export", help="Write keypoints as JSON lines, one per frame processed (faces may be empty): to a file, "
        "to standard output with - (progress and summary go to stderr), or one datagram per frame to "
        "udp://HOST:PORT.", show_default=False)] = None,
    headless: Annotated[bool, typer.Option("--headless", help="No window (automatic when no display).")] = False,
    max_faces: Annotated[int, typer.Option("--max-faces", min=1, help="Most faces tracked at once.")] = 4,
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
    flip: FlipOption = False,
) -> None:
    """Track faces and their 15 keypoints on a camera, a video or a network stream; q or Esc quits.

    Keys in the window: [bold]q[/]/[bold]Esc[/] quit, [bold]space[/] pause, [bold]s[/] save a PNG
    snapshot, [bold]m[/] mirror, [bold]f[/] FPS overlay on/off. With no display it runs headless.
    """
    from fkd.realtime.guards import check_live_paths
    from fkd.realtime.live import LiveConfig, run_live, summary_lines
    from fkd.realtime.pipeline import live_pipeline
    from fkd.realtime.sinks import check_network_target, is_network, is_stdout
    from fkd.realtime.smooth import OneEuroParams
    from fkd.realtime.sources import is_url, open_camera, open_stream, open_video, parse_camera

    if list_cameras:
        print_cameras()
        return
    with reported_errors():
        if video is not None and camera is not None:
            raise UsageError("give either --camera or --video, not both.")
        require_number("--threshold", threshold, 0.0, 1.0)  # typer's range lets NaN through
        video_file = Path(video) if video is not None and not is_url(video) else None
        export_file = Path(export) if export is not None and not is_stdout(export) and not is_network(export) else None
        check_live_paths(video_file, weights, output, export_file)
        if export is not None and is_network(export):
            check_network_target(export)
        camera_id = parse_camera(camera, MAX_CAMERA) if camera is not None else 0
        predictor = make_predictor(weights, threads, flip)
        # the model first: a live source opened before it would drop the frames sent while the model loads
        source = (open_camera(camera_id, width, height, fps, timeout) if video is None
                  else open_stream(video, timeout, reconnect) if video_file is None else open_video(video_file))
        pipeline = live_pipeline(predictor, source.live, max_faces=max_faces, detect_every=detect_every,
                                 smoothing=None if no_smooth else OneEuroParams(), threshold=threshold)
        config = LiveConfig(output=output, export=export, headless=headless, mirror=mirror, labels=labels,
                            progress=True)
        summary = run_live(source, pipeline, config)
    for line in summary_lines(summary):
        typer.echo(line, err=True)
    if summary.stopped_by and summary.stopped_by != "SIGINT":  # Ctrl-C is how a user quits; others are not
        raise typer.Exit(128 + signal.Signals[summary.stopped_by].value)


def print_cameras() -> None:
    """fkd-live --list-cameras: each camera that opens, with its size; one line when there is none."""
    from fkd.realtime.sources import list_cameras

    cameras = list_cameras()
    if not cameras:
        typer.echo("no camera found: none of the usual ones (/dev/video* on Linux, indices 0..9 elsewhere) "
                   "opened and gave a frame.")
    for camera, width, height in cameras:
        typer.echo(f"camera {camera}: {width}x{height}")


@predict_app.command(epilog="Example: fkd-predict ../shared/data/300w/afw --export faces.jsonl -o annotated/")
def predict(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (searched recursively).",
                                                show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for annotated copies of the images.",
                                                show_default=False)] = None,
    export: Annotated[Path | None, typer.Option("--export", metavar="FILE", help="Write one JSON line per image here.",
                                                show_default=False)] = None,
    weights: WeightsOption = None,
    labels: Annotated[bool, typer.Option("--labels", help="Write keypoint names beside the points.")] = False,
    threads: ThreadsOption = THREADS,
    threshold: ThresholdOption = None,
    json_path: Annotated[Path | None, typer.Option("--json", hidden=True, help="Deprecated name of --export.")]
    = None,
    flip: FlipOption = True,
) -> None:
    """Find faces and their 15 keypoints in photos, one image at a time (bounded memory).

    Unreadable files are skipped with a warning and counted at the end; the exit code is then 3
    (done, some inputs skipped), and 1 if none could be read.
    """
    from fkd.realtime.draw import draw_faces
    from fkd.realtime.guards import plan_photos, write_photo
    from fkd.realtime.pipeline import photo_pipeline
    from fkd.realtime.records import JsonLines, image_record
    from fkd.realtime.sources import read_image

    images = faces = skipped = 0
    exporter = None
    with reported_errors(), stop_on_signals() as stop:
        try:
            export = deprecated("--json", json_path, "--export", export)
            pipeline = photo_pipeline(make_predictor(weights, threads, flip), threshold)
            require_number("--threshold", threshold, 0.0, 1.0)
            photos = plan_photos(paths, output, export, weights)
            exporter = JsonLines(export) if export else None
            for path, name in photos:
                if stop:  # a signal: the photos so far are written and exported, the rest are not
                    typer.echo(f"fkd-predict: {stop.note(f'{len(photos) - images - skipped} photos not processed')}",
                               err=True)
                    break
                image = read_image(path)
                if image is None:
                    skipped += 1
                    why = "not a readable image" if path.exists() else "no such file"
                    typer.echo(f"warning: skipping {path}: {why}.", err=True)
                    continue
                found = pipeline.process(image)
                images += 1
                faces += len(found)
                if exporter:
                    exporter.write(image_record(path, image.shape[1], image.shape[0], found))
                if output:
                    draw_faces(image, found, labels)
                    write_photo(output / name, image)
            if images == 0:
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
