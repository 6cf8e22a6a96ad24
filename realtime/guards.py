"""What fkd-live and fkd-predict check before they open anything, and how a photo copy is written.

The checks themselves live in model/io/paths.py (shared with the training commands); this module
says which of them each command needs, in the order a user would want to hear about them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from fkd.model.errors import FkdError, UsageError
from fkd.model.io.files import remove_stale_temporaries, write_bytes_atomic
from fkd.model.io.outputs import temporary_in_use
from fkd.model.io.paths import check_output_folder, check_outputs, make_parent, shown
from fkd.realtime.batch.expand import expand_photos


def check_live_paths(video: Path | None, weights: Path | None, output: Path | None, export: Path | None) -> None:
    """Outputs are neither folders, nor the video or the weights, nor the same file twice.

    The video itself is checked where it is opened (``open_video``: a readable regular file,
    any path), after the weights, so the first problem reported is the first met.
    """
    inputs = [p for p in (video, weights) if p is not None]
    check_outputs([("--output", output), ("--export", export)], inputs)


def plan_photos(sources: Iterable[str | Path], output: Path | None, export: Path | None,
                weights: Path | None) -> list[tuple[Path, Path]]:
    """Every (photo, name of its annotated copy), after refusing outputs that would overwrite an input.

    The SOURCE arguments are files, folders, globs or lists (realtime/batch/expand.py). The list
    is made before any photo is read (a few hundred bytes per photo), so a bad ``--output`` or
    ``--export`` is refused before any work, not after thousands of photos.
    """
    sources = [str(s) for s in sources]
    paths = [Path(s) for s in sources]
    photos = [(p.path, p.name) for p in expand_photos(sources) if p.path is not None]
    inputs = [*paths, *(p for p, _ in photos), *([weights] if weights else [])]
    check_outputs([("--export", export)], inputs)
    if output is not None:
        check_output_folder("--output", output, paths)
        if output.is_dir():  # what a run killed with -9 left half-written there
            remove_stale_temporaries(output, temporary_in_use)
        for photo, name in photos:  # e.g. an input folder inside the output folder
            if (output / name).resolve() == photo.resolve():
                raise UsageError(f"--output {shown(output)} would overwrite the input {shown(photo)}; "
                                 f"choose another folder.")
    return photos


def write_photo(target: Path, image: np.ndarray) -> None:
    """An annotated copy, encoded in memory and written atomically (any path, no OpenCV path crash)."""
    suffix = target.suffix.lower() if target.suffix else ".png"
    try:
        ok, data = cv2.imencode(suffix, image)
    except cv2.error:
        ok, data = False, None
    if not ok or data is None:  # a suffix OpenCV cannot encode (.gif, ...): keep the name, PNG inside
        ok, data = cv2.imencode(".png", image)
    make_parent(target, "--output")
    try:
        write_bytes_atomic(target, data.tobytes())
    except OSError as e:
        raise FkdError(f"--output {shown(target)}: cannot write it ({e.strerror}).") from None
