"""Image files and folders for fkd-predict: which files are photos, and reading one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from fkd.model.io.paths import read_image_bytes

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"})


def list_images(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """(image path, name for its annotated copy), for files named and images under folders named.

    Files named explicitly are passed on whatever their suffix, so a non-image is reported
    rather than silently ignored; in folders only image suffixes count (300-W keeps its
    .pts files beside the photos). Names keep the folder's own name and the path below it,
    so two folders with the same file names do not overwrite each other's copies.
    """
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        found = Path(root) / name
                        yield found, Path(path.resolve().name) / found.relative_to(path)
        else:
            yield path, Path(path.name)


def read_image(path: Path) -> np.ndarray | None:
    """A BGR image, or None when the file is missing, not a regular file or not a decodable image."""
    return read_image_bytes(path, cv2.IMREAD_COLOR)
