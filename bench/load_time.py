"""How long fkd-train and fkd-eval wait for their data: Kaggle CSV parsing and .pts folders, cold and cached.

    python bench/load_time.py [PTS_ROOT]

PTS_ROOT defaults to ../shared/data/300w. The Kaggle CSVs are synthetic but in the real
format and at the real scale (7049 training rows, 2140 of them fully labelled, the rest with
Kaggle's 4-point subset; 1783 test rows), written to a temporary folder. The .pts folders are
loaded once with an empty temporary cache (detector + crops) and once more from that cache.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from fkd.model.schema import INDEX, KAGGLE_MEAN, NUM_KEYPOINTS
from fkd.train.data.kaggle import read_test_csv, read_training_csv, write_test_csv, write_training_csv
from fkd.train.data.load import load_sources

TRAIN_ROWS, FULL_ROWS, TEST_ROWS = 7049, 2140, 1783
FOUR_POINTS = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip")


def synthetic_kaggle(folder: Path) -> tuple[Path, Path]:
    """training.csv and test.csv of Kaggle's size and shape, with random pixels."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (TRAIN_ROWS, 96, 96), dtype=np.uint8)
    points = (KAGGLE_MEAN + rng.normal(0, 3, (TRAIN_ROWS, NUM_KEYPOINTS, 2))).round(6)
    mask = np.zeros((TRAIN_ROWS, NUM_KEYPOINTS), bool)
    mask[:FULL_ROWS] = True
    mask[FULL_ROWS:, [INDEX[n] for n in FOUR_POINTS]] = True
    train = write_training_csv(folder / "training.csv", images, points, mask)
    test = write_test_csv(folder / "test.csv", np.arange(1, TEST_ROWS + 1), images[:TEST_ROWS])
    return train, test


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main(pts_root: Path) -> None:
    console = Console()
    table = Table(title="data load time", title_justify="left")
    for col, justify in (("source", "left"), ("faces", "right"), ("seconds", "right"), ("ms / face", "right")):
        table.add_column(col, justify=justify)

    def row(name: str, n: int, seconds: float) -> None:
        table.add_row(name, str(n), f"{seconds:.2f}", f"{1000 * seconds / max(n, 1):.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        train_csv, test_csv = synthetic_kaggle(Path(tmp))
        mb = train_csv.stat().st_size / 2**20
        faces, s = timed(read_training_csv, train_csv)
        row(f"Kaggle training.csv, synthetic ({mb:.0f} MB), parse + mask", len(faces), s)
        (ids, _), s = timed(read_test_csv, test_csv)
        row("Kaggle test.csv, synthetic, parse", len(ids), s)
    if pts_root.is_dir():
        with tempfile.TemporaryDirectory() as cache:
            faces, s = timed(load_sources, [pts_root], Path(cache))
            row(f"{pts_root.name} .pts folders, cold (detect + crop + write cache)", len(faces), s)
            faces, s = timed(load_sources, [pts_root], Path(cache))
            row(f"{pts_root.name} .pts folders, cached (.npz)", len(faces), s)
    else:
        console.print(f"[yellow]{pts_root} is missing; skipping the .pts rows[/]")
    console.print(table)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, Python "
                  f"{platform.python_version()}, load average at the end {load}")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "300w"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
