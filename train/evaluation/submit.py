"""Kaggle's submission file: one ``RowId,Location`` line per row of IdLookupTable.csv, in its order.

The lookup table, not the model, decides which values are submitted: most test images ask
for only 8 of the 30 values, and Kaggle rejects a file with any row missing or added.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fkd.model.crop import CROP_SIZE
from fkd.model.errors import FkdError
from fkd.model.io.files import write_text_atomic
from fkd.model.io.outputs import OutputLock
from fkd.model.io.paths import check_outputs, make_parent
from fkd.model.schema import CSV_COLUMNS, NUM_KEYPOINTS
from fkd.train.data.kaggle import read_csv, whole_numbers

LOOKUP_COLUMNS = ("RowId", "ImageId", "FeatureName")


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
    row_ids = whole_numbers(df, "RowId", lookup_csv)
    image_row = ids.get_indexer(whole_numbers(df, "ImageId", lookup_csv))
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
    check_outputs([("--output", out_csv)], [Path(source), Path(lookup_csv)])
    make_parent(out_csv, "--output")
    text = "RowId,Location\n" + "".join(f"{r},{v:.4f}\n" for r, v in zip(row_ids.tolist(), locations.tolist()))
    with OutputLock(out_csv, "--output"):
        write_text_atomic(out_csv, text)
    return len(row_ids)
