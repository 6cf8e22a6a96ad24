#!/usr/bin/env bash
# fkd on the other major OpenCV: CI installs the newest opencv-python (5.x); this runs the tests
# that touch OpenCV's detector, decoding, drawing and writing on another release, installed into
# a scratch folder that shadows the venv's own cv2 (nothing in the venv changes).
#
#   bash bench/opencv_versions.sh                      # opencv-python 4.14.0.94
#   OPENCV=5.1.0.95 bash bench/opencv_versions.sh      # or any other release
#
# Prints the cv2 version the tests ran on and pytest's summary; paste both into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OPENCV=${OPENCV:-4.14.0.94}
PYTHON=${PYTHON:-.venv/bin/python}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$PYTHON" -m pip install -q --no-deps --target "$scratch" "opencv-python==$OPENCV"
export PYTHONPATH="$scratch${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c "import cv2; print('cv2', cv2.__version__, 'from', cv2.__file__)"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_detect.py tests/test_crop.py tests/test_realtime_tracks.py \
    tests/test_realtime_predict.py tests/test_realtime_live.py tests/test_api.py tests/test_pts.py tests/test_mtfl.py
