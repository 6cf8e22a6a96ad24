"""Quantise an existing weights file's ONNX twin to int8 (fkd-train does this itself after export).

    python bench/quantize_onnx.py weights/fkd.pt --data ../shared/data/300w

For weights exported before fkd-train quantised its twins, with other calibration data, or
with other quantisation settings: the twin, int8 or not, is first exported again in float32
from the TorchScript file. Calibrates on 300 training-split crops of --data, checks
on its validation split, and keeps the int8 twin only if NME rises by at most --max-nme-rise
points and keypoints move by at most --max-shift px on average; otherwise the float32 twin
stays.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fkd.model.artifact import read_metadata
from fkd.model.errors import FkdError
from fkd.train.data.load import load_sources
from fkd.train.export.quantize import export_float_twin, quantise_twin

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "300w")
    parser.add_argument("--calibration", type=int, default=300, help="training crops to calibrate on")
    parser.add_argument("--max-nme-rise", type=float, default=0.1, help="percentage points")
    parser.add_argument("--max-shift", type=float, default=0.25, help="mean keypoint shift, crop px")
    args = parser.parse_args()
    try:
        read_metadata(args.weights)
        faces = load_sources([args.data], ROOT / ".cache")
        train, val, _ = faces.split()  # the untouched test split stays untouched
        export_float_twin(args.weights)  # start from float32 whatever the twin is now
        r = quantise_twin(args.weights, faces.crops[train], faces.crops[val], faces.points[val], faces.mask[val],
                          args.calibration, args.max_nme_rise / 100, args.max_shift)
    except FkdError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"validation ({len(val)} faces): NME float32 {100 * r['nme_float32']:.3f} %, "
          f"int8 {100 * r['nme_int8']:.3f} %; mean keypoint shift {r['mean_shift_px']:.3f} crop px")
    if not r["written"]:
        print("error: int8 costs too much accuracy; the float32 twin stays.", file=sys.stderr)
        return 1
    print(f"wrote {args.weights.with_suffix('.onnx')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
