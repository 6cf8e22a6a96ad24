"""Signals end runs cleanly: every output finalised, nothing half-written (issue 9).

The live test stops a real ``fkd-live`` mid-clip; afterwards the mp4 must play and hold as many
frames as the JSONL has lines (within 2). The flag itself is tested in-process with real
signals sent to this process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from fkd.model.io.signals import stop_on_signals

BIN = Path(sys.executable).parent


def count_frames(path: Path) -> int:
    """Frames actually decodable (the header's count is not trusted)."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open as a video"
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_fkd_live_stopped_mid_run_keeps_a_playable_video_and_every_line(shared: Path, tmp_path: Path,
                                                                       signum: signal.Signals) -> None:
    clip = shared / "video/three_people_lab_640x480.mp4"  # 702 frames: far longer than the wait below
    video, export = tmp_path / "x.mp4", tmp_path / "x.jsonl"
    process = subprocess.Popen([str(BIN / "fkd-live"), "--video", str(clip), "--headless", "--output", str(video),
                                "--export", str(export)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".x.jsonl.*fkd-tmp")) and time.monotonic() < deadline:
        time.sleep(0.1)  # wait until frames are being written
    tmp = next(iter(tmp_path.glob(".x.jsonl.*fkd-tmp")))
    while tmp.exists() and tmp.stat().st_size < 2000 and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    text = stderr.decode(errors="replace")
    assert process.returncode == 128 + signum, text
    assert "Traceback" not in text and f"stopped by {signum.name}" in text, text
    lines = export.read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(len(lines)))  # whole lines, none lost
    frames = count_frames(video)
    assert 0 < len(lines) < 702, "the run was not stopped mid-clip"
    assert abs(frames - len(lines)) <= 2, (frames, len(lines))
    assert not list(tmp_path.glob(".*fkd-*")), "a temporary or lock file was left behind"


def test_sigint_quits_fkd_live_with_code_zero(shared: Path, tmp_path: Path) -> None:
    """Ctrl-C is how a user ends a live session: outputs kept, exit 0."""
    clip = shared / "video/three_people_lab_640x480.mp4"
    export = tmp_path / "y.jsonl"
    process = subprocess.Popen([str(BIN / "fkd-live"), "--video", str(clip), "--headless", "--export", str(export)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".y.jsonl.*fkd-tmp")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode(errors="replace")
    assert export.read_text().count("\n") > 0


def test_the_flag_rises_once_then_a_second_signal_interrupts() -> None:
    with stop_on_signals() as stop:
        assert not stop
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs between bytecodes of the main thread
        assert stop and stop.name == "SIGTERM" and stop.exit_code == 143
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the old handler is back


def test_fkd_predict_stopped_exits_with_the_signal_and_a_complete_export(shared: Path, tmp_path: Path) -> None:
    photos = shared / "data/300w/afw"
    export = tmp_path / "p.jsonl"
    process = subprocess.Popen([str(BIN / "fkd-predict"), str(photos), "--export", str(export)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        temporaries = list(tmp_path.glob(".p.jsonl.*fkd-tmp"))
        if temporaries and temporaries[0].exists() and temporaries[0].stat().st_size > 0:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    text = stderr.decode(errors="replace")
    assert process.returncode == 143, text
    assert "stopped by SIGTERM" in text and "Traceback" not in text, text
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert records and all("faces" in r for r in records)


def test_fkd_train_stopped_keeps_a_checkpoint_that_resumes(tmp_path: Path) -> None:
    """SIGTERM between batches: exit 143, one sentence, last.pt intact, and --resume carries on."""
    import numpy as np

    from fkd.model.schema import KAGGLE_MEAN
    from fkd.train.data.kaggle import write_training_csv

    rng = np.random.default_rng(0)
    csv = write_training_csv(tmp_path / "training.csv", rng.integers(0, 256, (300, 96, 96), dtype=np.uint8),
                             KAGGLE_MEAN + rng.normal(0, 2, (300, 15, 2)), np.ones((300, 15), bool))
    run = tmp_path / "run"
    args = ["--output", str(run), "--width", "8", "--batch-size", "64", "--threads", "1"]
    process = subprocess.Popen([str(BIN / "fkd-train"), "--data", str(csv), "--epochs", "500", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 240
    while not (run / "last.pt").is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    text = stderr.decode(errors="replace")
    assert process.returncode == 143, text
    assert "Traceback" not in text and "stopped by SIGTERM during epoch" in text and "--resume" in text, text
    assert not list(run.glob(".*fkd-tmp*")), "a half-written file was left behind"
    resumed = subprocess.run([str(BIN / "fkd-train"), "--resume", "--output", str(run), "--epochs", "3"],
                             capture_output=True, timeout=300, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr.decode(errors="replace")
    assert (run / "fkd.pt").is_file()
