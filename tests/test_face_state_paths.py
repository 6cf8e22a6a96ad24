"""Pose and expressions reach every path: fkd-predict (one process and a pool), fkd-live's records,
its overlay, its --vmc stream to a real OSC server, and the Python API; old readers still read.

The state itself (the fit, the angles' signs, the expressions) is tested in test_face_state.py;
here the question is whether each path carries it, the same way.
"""

from __future__ import annotations

import itertools
import json
import math
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from clips import clip_frames, write_clip
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from typer.testing import CliRunner

import fkd
from fkd.realtime.batch.ray_option import with_ray_default
from fkd.realtime.cli import live_app, predict_app
from fkd.realtime.defaults import VMC_HOST, VMC_PORT
from fkd.realtime.outputs.draw import draw_faces, mirrored
from fkd.realtime.outputs.records import Face, face_record, keypoints_of
from fkd.realtime.state.expression import EXPRESSIONS
from fkd.realtime.state.faces import face_state

CLIP = "video/talking_head_512.mp4"


def _clip(shared: Path, folder: Path, frames: int) -> Path:
    """The first ``frames`` frames of the talking head, as a file of its own."""
    return write_clip(folder / "head.avi", clip_frames(shared / CLIP, frames), fps=25)


def _check_state(face: dict) -> None:
    """A record's face with a sane pose, position and expressions."""
    assert set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert all(math.isfinite(v) and abs(v) < 90 for v in face["pose"].values())
    assert 20 < face["position"][2] < 300  # a head seen by a camera, in cm
    assert set(face["expression"]) == set(EXPRESSIONS)
    assert all(0.0 <= v <= 1.0 for v in face["expression"].values())


def test_photos_carry_pose_and_expressions_in_one_process_and_a_pool(shared: Path, tmp_path: Path) -> None:
    photos = sorted((shared / "data/300w/afw").glob("*.jpg"))[:4]
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"faces-{workers}.jsonl"
        result = CliRunner().invoke(predict_app, [*map(str, photos), "--export", str(out), "--workers", workers])
        assert result.exit_code == 0, result.output
        outs.append(out.read_text())
    assert outs[0] == outs[1]  # the pool's records are the single process's, pose and all
    faces = [f for line in outs[0].splitlines() for f in json.loads(line)["faces"]]
    assert len(faces) >= 4
    for face in faces:
        assert list(face)[:4] == ["id", "box", "score", "keypoints"]  # the first fields, as before
        _check_state(face)


def test_fov_moves_the_head_not_its_angles_much(shared: Path, tmp_path: Path) -> None:
    """A narrower field of view is a longer lens: the same picture puts the head farther away."""
    photo = str(sorted((shared / "data/300w/afw").glob("*.jpg"))[0])
    depth = {}
    for fov in ("40", "63"):
        out = tmp_path / f"{fov}.jsonl"
        result = CliRunner().invoke(predict_app, [photo, "--export", str(out), "--fov", fov])
        assert result.exit_code == 0, result.output
        depth[fov] = json.loads(out.read_text())["faces"][0]["position"][2]
    assert depth["40"] > 1.5 * depth["63"]


def test_live_records_carry_the_state_and_old_readers_read_them(shared: Path, tmp_path: Path) -> None:
    clip = _clip(shared, tmp_path, 40)
    out = tmp_path / "frames.jsonl"
    result = CliRunner().invoke(live_app, ["--video", str(clip), "--headless", "--export", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    faces = [f for r in records for f in r["faces"]]
    assert len(faces) >= 35
    for record in records:
        assert record["version"] == 1  # new fields, same version: the records' own rule
    for face in faces:
        _check_state(face)
        assert keypoints_of(face).shape == (15, 2)  # a reader of the first fields reads as before
    yaws = [f["pose"]["yaw"] for f in faces]
    assert max(abs(a - b) for a, b in itertools.pairwise(yaws)) < 5  # smoothed: no jumps between frames


def test_the_mirrored_overlay_mirrors_the_pose(shared: Path) -> None:
    image = cv2.imread(str(sorted((shared / "data/300w/afw").glob("*.jpg"))[0]))
    found = fkd.Landmarker().landmarks(image)[0]
    h, w = image.shape[:2]
    pose, expression = face_state(found.keypoints, w, h)
    face = Face(0, found.box, found.keypoints, found.score, pose, expression)
    flipped = mirrored([face], w)[0]
    assert flipped.pose is not None
    assert flipped.pose.yaw == pytest.approx(-pose.yaw) and flipped.pose.roll == pytest.approx(-pose.roll)
    assert flipped.pose.pitch == pytest.approx(pose.pitch)
    assert flipped.expression == expression
    plain, axes = image.copy(), image.copy()
    draw_faces(plain, [face], axes=False)
    draw_faces(axes, [face], axes=True)
    assert np.any(plain != axes)  # the axes are drawn, and --no-axes leaves them out
    assert "pose" in face_record(face) and "pose" not in face_record(Face(0, face.box, face.keypoints, 1.0))


def test_the_api_gives_pose_and_expressions(shared: Path) -> None:
    image = cv2.imread(str(sorted((shared / "data/300w/afw").glob("*.jpg"))[0]))
    marker = fkd.Landmarker()
    for face in [*marker.landmarks(image), *marker.landmarks(image, boxes=[marker.landmarks(image)[0].box])]:
        assert face.pose is not None and math.isfinite(face.pose.yaw)
        assert set(face.expression) == set(EXPRESSIONS)
    with pytest.raises(fkd.UsageError, match="fov"):
        fkd.Landmarker(fov=0)


class _Frames(Dispatcher):
    """Each datagram's messages, together (fkd sends one bundle per frame)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: queue.Queue[list[tuple[str, tuple[Any, ...]]]] = queue.Queue()
        self._local = threading.local()
        self.set_default_handler(lambda address, *args: self._local.messages.append((address, args)))

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        self._local.messages = []
        done = super().call_handlers_for_packet(data, client_address)
        self.frames.put(self._local.messages)
        return done


@pytest.fixture
def osc_server() -> Iterator[tuple[int, _Frames]]:
    dispatcher = _Frames()
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], dispatcher
    server.shutdown()
    server.server_close()


def test_live_sends_the_head_to_a_real_osc_server(shared: Path, tmp_path: Path,
                                                  osc_server: tuple[int, _Frames]) -> None:
    port, dispatcher = osc_server
    clip = _clip(shared, tmp_path, 40)
    result = CliRunner().invoke(live_app, ["--video", str(clip), "--headless", "--vmc", f"127.0.0.1:{port}"])
    assert result.exit_code == 0, result.output
    frames = []
    while True:
        try:
            frames.append(dispatcher.frames.get(timeout=2))
        except queue.Empty:
            break
    assert len(frames) == 40  # every frame, face or not, says so
    heads = [f for f in frames if any(a == "/VMC/Ext/Bone/Pos" and args[0] == "Head" for a, args in f)]
    assert len(heads) >= 0.9 * len(frames)
    blends = {args[0]: args[1] for a, args in heads[-1] if a == "/VMC/Ext/Blend/Val"}
    assert {"A", "Joy", "jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp"} <= set(blends)
    assert all(0.0 <= v <= 1.0 for v in blends.values())
    assert [a for a, _ in heads[-1]][-1] == "/VMC/Ext/Blend/Apply"


def test_vmc_alone_takes_the_avatar_apps_default() -> None:
    default = f"{VMC_HOST}:{VMC_PORT}"
    assert with_ray_default(["--vmc"]) == ["--vmc", default]
    assert with_ray_default(["--vmc", "--headless"]) == ["--vmc", default, "--headless"]
    assert with_ray_default(["--vmc", "9000"]) == ["--vmc", "9000"]


def test_a_failed_fit_leaves_the_fields_out_rather_than_write_nan() -> None:
    """JSON has no NaN: degenerate keypoints (all on one spot) must not make an unreadable line."""
    points = np.full((15, 2), 50.0)
    pose, expression = face_state(points, 320, 240)
    record = face_record(Face(0, (40, 40, 20, 20), points, 0.9, pose, expression))
    json.dumps(record, allow_nan=False)  # raises on NaN or infinity
    assert list(record)[:4] == ["id", "box", "score", "keypoints"]
    image = np.zeros((240, 320, 3), np.uint8)
    draw_faces(image, [Face(0, (40, 40, 20, 20), points, 0.9, pose, expression)])  # draws what it can, no axes
