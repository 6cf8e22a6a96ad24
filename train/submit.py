"""Kaggle's submission file: one ``RowId,Location`` line per row of IdLookupTable.csv, in its order.

The lookup table, not the model, decides which values are submitted: most test images ask
for only 8 of the 30 values, and Kaggle rejects a file with any row missing or added.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from fkd.model.crop import CROP_SIZE
from fkd.model.errors import FkdError
from fkd.model.schema import CSV_COLUMNS, NUM_KEYPOINTS
from fkd.train.kaggle import read_csv

LOOKUP_COLUMNS = ("RowId", "ImageId", "FeatureName")


def _integers(df: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise FkdError(f"{path}: row {row + 2} has {column} {df[column].iloc[row]!r}, expected a whole number.")
    return values.astype(np.int64)


def lookup_locations(image_ids: np.ndarray, predictions: np.ndarray, lookup_csv: Path,
                     source: str = "test.csv") -> tuple[np.ndarray, np.ndarray]:
    """(RowId, Location) arrays in the lookup table's order, Locations clipped to the 96x96 image."""
    lookup_csv = Path(lookup_csv)
    image_ids = np.asarray(image_ids, np.int64)
    predictions = np.asarray(predictions, np.float64)
    if predictions.shape != (len(image_ids), NUM_KEYPOINTS, 2):
        raise ValueError(f"predictions must be ({len(image_ids)}, {NUM_KEYPOINTS}, 2), not {predictions.shape}")
    ids = pd.Index(image_ids)
    if not ids.is_unique:
        dup = int(ids[ids.duplicated()][0])
        raise FkdError(f"{source}: ImageId {dup} appears more than once.")
    df = read_csv(lookup_csv, LOOKUP_COLUMNS)
    if df.empty:
        raise FkdError(f"{lookup_csv}: the lookup table has no rows.")
    row_ids = _integers(df, "RowId", lookup_csv)
    image_row = ids.get_indexer(_integers(df, "ImageId", lookup_csv))
    if (image_row < 0).any():
        first = int(np.flatnonzero(image_row < 0)[0])
        raise FkdError(f"{lookup_csv}: row {first + 2} asks for ImageId {df['ImageId'].iloc[first]}, which {source} "
                       f"does not contain ({int((image_row < 0).sum())} lookup rows are affected).")
    value = pd.Index(CSV_COLUMNS).get_indexer(df["FeatureName"].astype(str).str.strip())
    if (value < 0).any():
        first = int(np.flatnonzero(value < 0)[0])
        raise FkdError(f"{lookup_csv}: row {first + 2} has the unknown FeatureName {df['FeatureName'].iloc[first]!r}; "
                       f"expected a Kaggle keypoint column such as {CSV_COLUMNS[0]}.")
    locations = predictions.reshape(len(image_ids), -1)[image_row, value]
    if not np.isfinite(locations).all():
        first = int(np.flatnonzero(~np.isfinite(locations))[0])
        raise FkdError(f"the model predicted a non-finite value for ImageId {image_ids[image_row[first]]} "
                       f"({CSV_COLUMNS[value[first]]}); check the weights.")
    return row_ids, np.clip(locations, 0.0, float(CROP_SIZE))


def write_submission(image_ids: np.ndarray, predictions: np.ndarray, lookup_csv: Path, out_csv: Path,
                     source: str = "test.csv") -> int:
    """Write ``out_csv`` atomically (a killed run leaves no half file) and return its number of rows.

    ``predictions`` are (N, 15, 2) crop pixels for ``image_ids``; ``source`` names where the
    images came from, for error messages.
    """
    row_ids, locations = lookup_locations(image_ids, predictions, lookup_csv, source)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_csv.parent, prefix=out_csv.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write("RowId,Location\n")
            f.writelines(f"{r},{v:.4f}\n" for r, v in zip(row_ids.tolist(), locations.tolist()))
        os.replace(tmp, out_csv)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(row_ids)
