"""Kaggle's training.csv / test.csv, read exactly as the competition ships them.

Missing labels stay missing: they become a False in the mask, never a filled-in value.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fkd.model.crop import CROP_SIZE
from fkd.model.errors import FkdError
from fkd.model.schema import CSV_COLUMNS, NUM_KEYPOINTS
from fkd.train.data.faceset import FaceSet

PIXELS = CROP_SIZE * CROP_SIZE


def read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FkdError(f"{path}: no such file.")
    try:
        df = pd.read_csv(path, dtype={"Image": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise FkdError(f"{path}: not a readable CSV file ({str(e).splitlines()[0]}).") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise FkdError(f"{path}: missing the column(s) {shown}; expected Kaggle's format.")
    return df


def whole_numbers(df: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """A column of whole numbers as int64, or one sentence naming the first row that is not one."""
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2**53)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise FkdError(f"{path}: row {row + 2} has {column} {df[column].iloc[row]!r}, expected a whole number.")
    return values.astype(np.int64)


def parse_pixels(images: pd.Series, path: Path) -> np.ndarray:
    """The Image column -> (N, 96, 96) uint8, naming the first bad row (1-based, as in a spreadsheet)."""
    out = np.empty((len(images), CROP_SIZE, CROP_SIZE), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns when a string holds a non-number
        for row, text in enumerate(images.tolist()):
            line = f"{path}: row {row + 2}"  # +1 for the header, +1 for 1-based
            if not isinstance(text, str) or not text.strip():
                raise FkdError(f"{line} has an empty Image cell.")
            try:
                values = np.fromstring(text, dtype=np.int64, sep=" ")
            except (DeprecationWarning, ValueError):
                raise FkdError(f"{line}: the Image cell holds something that is not a whole number.") from None
            if values.size != PIXELS:
                raise FkdError(f"{line}: the Image cell has {values.size} pixel values, expected {PIXELS}.")
            if values.min() < 0 or values.max() > 255:
                raise FkdError(f"{line}: the Image cell has pixel values outside 0..255.")
            out[row] = values.reshape(CROP_SIZE, CROP_SIZE)
    return out


def read_training_csv(path: Path) -> FaceSet:
    """training.csv -> FaceSet with a per-keypoint mask (a point counts only if both x and y are given)."""
    path = Path(path)
    df = read_csv(path, (*CSV_COLUMNS, "Image"))
    try:
        coords = df[list(CSV_COLUMNS)].apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
    except (ValueError, TypeError):
        raise FkdError(f"{path}: a keypoint column holds something that is not a number.") from None
    points = coords.reshape(-1, NUM_KEYPOINTS, 2)
    mask = np.isfinite(points).all(-1)
    far = mask & (np.abs(points - CROP_SIZE / 2) > 1.5 * CROP_SIZE).any(-1)  # 1e9: a broken cell, not a label
    if far.any():
        row, point = (int(i) for i in np.argwhere(far)[0])
        raise FkdError(f"{path}: row {row + 2} has {CSV_COLUMNS[2 * point][:-2]} at {points[row, point].tolist()}, "
                       f"far outside the {CROP_SIZE}x{CROP_SIZE} image.")
    if len(df) and not mask.any():  # training on it would give NaN losses and NaN metrics
        raise FkdError(f"{path}: no row has a keypoint label (all {len(CSV_COLUMNS)} keypoint columns are empty); "
                       f"nothing to learn from.")
    images = parse_pixels(df["Image"], path)
    ids = [f"{path.name}/{i}" for i in range(len(df))]
    faces = FaceSet.from_crops(ids, images, points, mask)
    faces.info = {"faces": len(faces), "fully_labelled": int(mask.all(1).sum())}
    return faces


def read_test_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """test.csv -> (ImageId array, (N, 96, 96) uint8 images)."""
    path = Path(path)
    df = read_csv(path, ("ImageId", "Image"))
    return whole_numbers(df, "ImageId", path), parse_pixels(df["Image"], path)


_GREY_LEVELS = np.array([str(v) for v in range(256)], dtype=object)


def format_pixels(image: np.ndarray) -> str:
    """One 96x96 uint8 image -> Kaggle's Image cell (row-major grey levels, space-separated)."""
    return " ".join(_GREY_LEVELS[np.asarray(image, dtype=np.uint8).ravel()])


def write_training_csv(path: Path, images: np.ndarray, points: np.ndarray, mask: np.ndarray) -> Path:
    """The inverse of read_training_csv: unlabelled points become empty cells, as in Kaggle's file."""
    coords = np.where(np.asarray(mask, bool)[..., None], points, np.nan).reshape(len(images), -1)
    df = pd.DataFrame(coords, columns=list(CSV_COLUMNS))
    df["Image"] = [format_pixels(im) for im in images]
    df.to_csv(path, index=False)
    return Path(path)


def write_test_csv(path: Path, image_ids: np.ndarray, images: np.ndarray) -> Path:
    """The inverse of read_test_csv: ``ImageId,Image`` rows."""
    pd.DataFrame({"ImageId": np.asarray(image_ids, np.int64), "Image": [format_pixels(im) for im in images]}) \
        .to_csv(path, index=False)
    return Path(path)
