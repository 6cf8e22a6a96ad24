"""Bad input to fkd-live and fkd-predict: one sentence on stderr, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_checks import assert_one_sentence
from typer.testing import CliRunner

from fkd.realtime.cli import live_app, predict_app

pytestmark = pytest.mark.usefixtures("restore_threads")


def live(*args: object):
    return CliRunner().invoke(live_app, [str(a) for a in args])


def live_process(*args: object) -> subprocess.CompletedProcess:
    """fkd-live in its own process, so that what OpenCV and FFmpeg print from C is seen too."""
    code = "from fkd.realtime.cli import live_app; live_app(prog_name='fkd-live')"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_absent_camera_is_named_and_video_suggested(tiny_weights: Path) -> None:
    assert_one_sentence(live("--camera", 97, "--headless", "--weights", tiny_weights), "camera 97", "--video")
    proc = live_process("--camera", 97, "--headless", "--weights", tiny_weights)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_missing_video(tiny_weights: Path, tmp_path: Path) -> None:
    assert_one_sentence(live("--video", tmp_path / "gone.mp4", "--weights", tiny_weights), "gone.mp4", "does not exist")


@pytest.mark.parametrize("content", [b"", b"not a video at all\n", bytes(range(256)) * 40])
def test_corrupt_video(tiny_weights: Path, tmp_path: Path, content: bytes) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(content)
    assert_one_sentence(live("--video", clip, "--weights", tiny_weights), "clip.mp4")


def test_corrupt_video_says_nothing_else(tiny_weights: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a video at all\n")
    proc = live_process("--video", clip, "--weights", tiny_weights)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"error: {clip} could not be opened as a video (corrupt, or not a video format)."], proc.stderr


def test_camera_and_video_together(tiny_weights: Path, tmp_path: Path) -> None:
    assert_one_sentence(live("--camera", 0, "--video", tmp_path / "a.mp4", "--weights", tiny_weights), "not both",
                        code=2)


def test_output_needs_a_known_container(shared: Path, tiny_weights: Path, tmp_path: Path) -> None:
    clip = shared / "video" / "webcam_320x240.mp4"
    assert_one_sentence(live("--video", clip, "--weights", tiny_weights, "--headless", "--output", tmp_path / "a.gif"),
                        ".mp4", ".avi", code=2)


def test_wrong_weights_file(tmp_path: Path) -> None:
    text = tmp_path / "fkd.pt"
    text.write_text("not weights")
    other = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(other))
    for weights, fragment in ((text, "not a TorchScript archive"), (other, "no fkd metadata"),
                              (tmp_path / "gone.pt", "does not exist")):
        assert_one_sentence(live("--video", tmp_path / "x.mp4", "--weights", weights), weights.name, fragment)
        assert_one_sentence(CliRunner().invoke(predict_app, [str(tmp_path), "--weights", str(weights)]), fragment)
