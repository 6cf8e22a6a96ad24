"""The run-comparison picture is a real PNG, written atomically, from real run histories."""

from pathlib import Path

import cv2
import numpy as np

from fkd.train.export.plots import run_comparison


def history(nme_start: float, epochs: int) -> list[dict]:
    """A history as fkd-train writes it; the first epoch has no validation score yet."""
    rows = []
    for e in range(1, epochs + 1):
        rows.append({"epoch": e, "train_loss": 10.0 / e, "point_loss": 8.0 / e,
                     "val_nme": None if e == 1 else nme_start - 0.001 * e})
    return rows


def test_run_comparison_writes_a_png_and_no_temporaries(tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    run_comparison({"a": history(0.04, 30), "b": history(0.035, 12)}, out)
    image = cv2.imread(str(out))
    assert image is not None and image.shape[:2] == (400, 1100)
    assert float(np.std(image)) > 5  # curves and text, not a blank canvas
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]


def test_run_comparison_replaces_an_older_picture(tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    out.write_bytes(b"not a png")
    run_comparison({"only": history(0.03, 5)}, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
