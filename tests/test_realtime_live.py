"""fkd-live on the shared clips, headless, with real OpenCV and the shipped model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fkd.model.schema import KEYPOINTS
from fkd.realtime.cli import live_app
from fkd.realtime.outputs.records import keypoints_of

CLIPS = ("talking_head_512.mp4", "webcam_320x240.mp4", "webcam_640x360_backlit.mp4")  # one face each

pytestmark = pytest.mark.usefixtures("restore_threads")


def decoded(path: Path) -> tuple[int, int, int]:
    """Frames that OpenCV decodes from ``path``, with its width and height."""
    cap = cv2.VideoCapture(str(path))
    size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frames = 0
    while cap.grab():
        frames += 1
    cap.release()
    return frames, *size


@pytest.fixture(scope="module")
def runs(shared: Path, shipped_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each clip through fkd-live --headless --export --output, once for all the tests below."""
    out = {}
    for clip in CLIPS:
        folder = tmp_path_factory.mktemp(clip.split(".")[0])
        args = ["--video", shared / "video" / clip, "--weights", shipped_weights, "--headless",
                "--export", folder / "k.jsonl", "--output", folder / "annotated.mp4"]
        result = CliRunner().invoke(live_app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        lines = (folder / "k.jsonl").read_text().splitlines()
        out[clip] = {"result": result, "records": [json.loads(line) for line in lines], "folder": folder,
                     "clip": shared / "video" / clip}
    return out


@pytest.mark.parametrize("clip", CLIPS)
def test_one_line_per_decoded_frame(runs: dict, clip: str) -> None:
    run = runs[clip]
    frames, _, _ = decoded(run["clip"])
    assert [r["frame"] for r in run["records"]] == list(range(frames))
    table = pd.read_json(run["folder"] / "k.jsonl", lines=True)  # the documented way to read it
    assert list(table.columns) == ["version", "frame", "time", "faces"] and len(table) == frames


@pytest.mark.parametrize("clip", CLIPS)
def test_faces_on_nearly_every_frame(runs: dict, clip: str) -> None:
    records = runs[clip]["records"]
    with_face = sum(bool(r["faces"]) for r in records)
    assert with_face >= 0.95 * len(records), f"{with_face}/{len(records)} frames with a face"


@pytest.mark.parametrize("clip", CLIPS)
def test_keypoints_inside_boxes_and_frame(runs: dict, clip: str) -> None:
    _, width, height = decoded(runs[clip]["clip"])
    for record in runs[clip]["records"]:
        for face in record["faces"]:
            assert set(face["keypoints"]) == set(KEYPOINTS)
            x, y, w, h = face["box"]
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height and w > 0 and h > 0
            p = keypoints_of(face)
            assert (p[:, 0] >= x).all() and (p[:, 0] <= x + w).all(), (record["frame"], face)
            assert (p[:, 1] >= y).all() and (p[:, 1] <= y + h).all(), (record["frame"], face)


@pytest.mark.parametrize("clip", CLIPS)
def test_output_video_has_the_input_frames_and_size(runs: dict, clip: str) -> None:
    assert decoded(runs[clip]["folder"] / "annotated.mp4") == decoded(runs[clip]["clip"])


@pytest.mark.parametrize("clip", CLIPS)
def test_one_track_id_through_the_clip(runs: dict, clip: str) -> None:
    ids = {face["id"] for r in runs[clip]["records"] for face in r["faces"]}
    assert ids == {0}


def test_exit_summary(runs: dict) -> None:
    text = runs[CLIPS[0]]["result"].stderr
    assert "200 frames read, " in text and " faces per frame" in text, text
    stages = [line.split()[0] for line in text.splitlines()[2:]]
    assert {"read", "detect", "crop", "model", "draw"} <= set(stages) and "fps overall" in text, text


def test_broken_stream_keeps_the_frames_so_far(shared: Path, shipped_weights: Path, tmp_path: Path) -> None:
    """A file cut off mid-way: the run ends cleanly and the output holds every frame read."""
    whole = tmp_path / "whole.avi"
    cap = cv2.VideoCapture(str(shared / "video" / CLIPS[1]))
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    while (frame := cap.read()[1]) is not None:
        writer.write(frame)
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "out.avi"
    args = ["--video", cut, "--weights", shipped_weights, "--headless", "--output", out,
            "--export", tmp_path / "k.jsonl"]
    result = CliRunner().invoke(live_app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    lines = len((tmp_path / "k.jsonl").read_text().splitlines())
    assert 0 < lines < decoded(whole)[0]
    assert "the video ended after" in result.stderr
    assert decoded(out) == (lines, 320, 240)


def test_no_display_falls_back_to_headless(shared: Path, shipped_weights: Path, tmp_path: Path) -> None:
    """Without --headless and without a display, the process must not die in cv2.imshow."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "k.jsonl"
    code = "from fkd.realtime.cli import live_app; live_app(prog_name='fkd-live')"
    proc = subprocess.run([sys.executable, "-c", code, "--video", str(shared / "video" / CLIPS[1]), "--weights",
                           str(shipped_weights), "--export", str(out)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "headless" in line]
    assert len(notices) == 1 and "display" in notices[0], proc.stderr
    assert len(out.read_text().splitlines()) == decoded(shared / "video" / CLIPS[1])[0]


def test_mirror_keeps_exported_pixels(shared: Path, shipped_weights: Path, tmp_path: Path) -> None:
    """--mirror flips the view only; the export stays in the original frame's pixels."""
    clip = shared / "video" / CLIPS[1]
    plain, mirrored = tmp_path / "plain.jsonl", tmp_path / "mirror.jsonl"
    for path, extra in ((plain, []), (mirrored, ["--mirror"])):
        args = ["--video", clip, "--weights", shipped_weights, "--headless", "--export", path, *extra]
        assert CliRunner().invoke(live_app, [str(a) for a in args]).exit_code == 0
    a = [json.loads(line) for line in plain.read_text().splitlines()]
    b = [json.loads(line) for line in mirrored.read_text().splitlines()]
    first = next(i for i, r in enumerate(a) if r["faces"])
    assert np.allclose(keypoints_of(a[first]["faces"][0]), keypoints_of(b[first]["faces"][0]), atol=1.0)


@pytest.mark.parametrize("after", ["grey", "texture"])
def test_track_ends_when_the_face_leaves(shared: Path, shipped_weights: Path, tmp_path: Path, after: str) -> None:
    """Two seconds of face, then five of an empty scene: no keypoints 3 s after the face has gone.

    The texture is the top-left corner of an AFW photo, blown up: vertical stripes whose
    keypoints once looked plausible; the face score must say it is no face. Runs on
    FKD_TEST_WEIGHTS if set; skips while the weights have no score head.
    """
    from fkd.model.artifact import Predictor

    shipped_weights = Path(os.environ.get("FKD_TEST_WEIGHTS", shipped_weights))
    if not Predictor(shipped_weights).has_score:
        pytest.skip(f"{shipped_weights} has no face score head, which is what ends a track")
    clip = tmp_path / "leaves.avi"
    cap = cv2.VideoCapture(str(shared / "video" / CLIPS[1]))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for _ in range(60):
        writer.write(cap.read()[1])
    photo = cv2.imread(str(shared / "data/300w/afw/4512714865_1.jpg"))
    scene = cv2.resize(photo[:60, :60], (320, 240)) if after == "texture" else np.full((240, 320, 3), 90, np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(150):  # camera noise, so that no two frames are alike
        writer.write(np.clip(scene + rng.integers(-4, 5, scene.shape), 0, 255).astype(np.uint8))
    writer.release()
    out = tmp_path / "k.jsonl"
    args = ["--video", clip, "--weights", shipped_weights, "--headless", "--export", out]
    assert CliRunner().invoke(live_app, [str(a) for a in args]).exit_code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(bool(r["faces"]) for r in records[:60]) >= 57
    assert not any(r["faces"] for r in records[60 + 90:])


def test_dead_x_display_falls_back_to_headless(shared: Path, shipped_weights: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """DISPLAY naming no X server would make Qt abort in cv2.imshow; it must be caught first."""
    monkeypatch.setenv("DISPLAY", ":97")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    args = ["--video", shared / "video" / CLIPS[1], "--weights", shipped_weights, "--export", tmp_path / "k.jsonl"]
    result = CliRunner().invoke(live_app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "DISPLAY=:97 names no running X server; running headless." in result.stderr
