"""Regenerate docs/example.png: fkd-predict's annotated output on four held-out 300-W photos.

    python docs/make_example.py [--weights weights/fkd.pt]

The photos are from the validation split of the shipped weights (weights/val_ids.txt), so
the picture shows faces the model never trained on.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "300w"
PICKS = 4
HEIGHT = 256


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path, default=REPO / "weights" / "fkd.pt")
    args = ap.parse_args()
    ids = (REPO / "weights" / "val_ids.txt").read_text().split()
    photos = [SHARED / f"{i}.jpg" for i in ids if (SHARED / f"{i}.jpg").is_file()]
    step = max(1, len(photos) // PICKS)
    chosen = photos[::step][:PICKS]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([Path(sys.executable).with_name("fkd-predict"), *map(str, chosen), "--output", tmp,
                        "--weights", str(args.weights)], check=True)
        tiles = []
        for img in sorted(Path(tmp).rglob("*.*")):
            im = cv2.imread(str(img))
            if im is not None:
                tiles.append(cv2.resize(im, (round(im.shape[1] * HEIGHT / im.shape[0]), HEIGHT)))
    out = REPO / "docs" / "example.png"
    cv2.imwrite(str(out), np.hstack(tiles))
    print(f"wrote {out} from {len(tiles)} photos: {', '.join(p.stem for p in chosen)}")


if __name__ == "__main__":
    main()
