"""One photo in, its record out (and its annotated copy written): the per-photo work of fkd-predict.

The same object does the work in every way fkd-predict runs: in the command's own process
(``--workers 1``), in each process of the local pool (realtime/batch/parallel.py) and in each Ray
actor (realtime/batch/ray_jobs.py). It is built from plain, picklable settings and loads the weights
once, so a worker pays for the model once and a photo gives the same record wherever it ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fkd.model.artifact import Predictor
from fkd.realtime.guards import write_photo
from fkd.realtime.outputs.draw import draw_faces
from fkd.realtime.outputs.records import image_record
from fkd.realtime.sources.images import read_image
from fkd.realtime.state.pose import DEFAULT_FOV
from fkd.realtime.tracking.pipeline import photo_pipeline


@dataclass(frozen=True)
class PhotoSettings:
    """What fkd-predict's options say about each photo; paths are absolute, so a worker whose
    current folder differs (a Ray worker) finds the same files."""

    weights: Path | None
    threads: int
    flip: bool
    threshold: float | None
    min_face: int
    labels: bool = False
    output: Path | None = None  # the folder for annotated copies
    fov: float = DEFAULT_FOV  # the camera's vertical field of view, for the head pose (--fov)


@dataclass(frozen=True)
class PhotoResult:
    """A photo's record, or None and why it could not be read (``faces`` counts the record's faces)."""

    record: dict | None
    faces: int = 0
    why: str = ""


def load_predictor(weights: Path | None, threads: int, flip: bool) -> Predictor:
    """The network with ``threads`` threads for onnxruntime and OpenCV alike (fkd-live's setting)."""
    cv2.setNumThreads(threads)
    return Predictor(weights, threads=threads, flip=flip)


class PhotoWorker:
    """The detector, the network and the output folder for photos, loaded once per process."""

    def __init__(self, settings: PhotoSettings) -> None:
        self.settings = settings
        predictor = load_predictor(settings.weights, settings.threads, settings.flip)
        self.pipeline = photo_pipeline(predictor, settings.threshold, min_face=settings.min_face, fov=settings.fov)

    def photo(self, path: Path, name: Path, key: str | None = None) -> PhotoResult:
        """A photo on a local (or shared) filesystem, read by bytes: any path works. Its record
        calls it ``key`` (default: ``path``), the path as the command found it."""
        image = read_image(path)
        if image is None:
            return PhotoResult(None, why="not a readable image" if path.exists() else "no such file")
        return self._process(image, str(path) if key is None else key, name)

    def encoded(self, data: bytes, key: str, name: Path) -> PhotoResult:
        """A photo's encoded bytes, as Ray Data read them from ``key`` (a URI)."""
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if len(data) else None
        if image is None:
            return PhotoResult(None, why="not a readable image")
        return self._process(image, key, name)

    def _process(self, image: np.ndarray, key: str, name: Path) -> PhotoResult:
        found = self.pipeline.process(image)
        record = image_record(key, image.shape[1], image.shape[0], found)
        if self.settings.output is not None:
            draw_faces(image, found, self.settings.labels, fov=self.settings.fov)
            write_photo(self.settings.output / name, image)
        return PhotoResult(record, len(found))
