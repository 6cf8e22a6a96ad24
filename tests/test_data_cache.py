"""The crop cache: one file per content, rebuilt when a source file changes, reused when none does."""

import shutil
from pathlib import Path

import numpy as np

from fkd.train.data.faceset import FaceSet
from fkd.train.data.load import load_sources


def _folder(pts_folder: Path, dest: Path, n: int = 4) -> Path:
    dest.mkdir()
    for pts in sorted(pts_folder.glob("*.pts"))[:n]:
        shutil.copy(pts, dest)
        shutil.copy(pts.with_suffix(".jpg"), dest)
    return dest


def _files(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")}


def test_cache_is_reused_when_nothing_changes_and_rebuilt_when_a_file_does(pts_folder: Path, tmp_path: Path) -> None:
    a = _folder(pts_folder, tmp_path / "a")
    b = _folder(pts_folder, tmp_path / "b", 2)
    cache = tmp_path / "cache"
    first = load_sources([a, b], cache)
    made = _files(cache)
    assert len(made) == 3  # one per folder, and the mix of both as one file
    again = load_sources([a, b], cache)
    assert _files(cache) == made  # nothing rewritten ...
    assert again.ids == first.ids and np.array_equal(again.crops, first.crops)  # ... and the same faces

    pts = sorted(a.glob("*.pts"))[0]
    lines = pts.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line[:1].isdigit()) + 30  # iBUG point 31, the nose tip
    x, y = map(float, lines[i].split())
    lines[i] = f"{x + 3:.3f} {y:.3f}"
    pts.write_text("\n".join(lines) + "\n")
    changed = load_sources([a, b], cache)
    now = _files(cache)
    assert len(now) == 5  # a new file for the changed folder and for the mix; b's is reused
    assert {k: v for k, v in now.items() if k in made} == made
    assert changed.ids == first.ids and not np.array_equal(changed.points, first.points)


def test_the_mixed_cache_file_trains_anywhere_as_data(pts_folder: Path, tmp_path: Path) -> None:
    a = _folder(pts_folder, tmp_path / "a")
    b = _folder(pts_folder, tmp_path / "b", 2)
    faces = load_sources([a, b], tmp_path / "cache")
    mixed = next(p for p in (tmp_path / "cache").glob("faces-*.npz"))
    moved = shutil.copy(mixed, tmp_path / "elsewhere.npz")
    again = load_sources([Path(moved)])  # no photos, no detector needed
    assert isinstance(again, FaceSet) and again.ids == faces.ids and np.array_equal(again.context, faces.context)
