"""Adversarial inputs for the five console scripts, run as real subprocesses (issue 9).

Every case checks the same five things: the process was not killed by a signal, printed no
traceback, exited with the expected code, said what was wrong in one ``error:`` sentence (or
typer's own range message) naming the flag or the file, and left every input byte-identical.
The inputs are tiny (a 12-frame video, 64x64 photos, three-row CSVs) so the table runs in a
couple of minutes; cases that would train stop at validation, before any epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from fkd.model.io.outputs import OutputLock
from fkd.model.metadata import default_weights

BIN = Path(sys.executable).parent
ENV = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}


@dataclass
class World:
    """The inputs every case may use, under ``root / "in"``; outputs go to ``root / "out"``."""

    root: Path
    held: list = field(default_factory=list)

    @property
    def inp(self) -> Path:
        return self.root / "in"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def __truediv__(self, name: str) -> Path:
        return self.inp / name


def _video(path: Path, frames: int = 12, size: int = 96) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25, (size, size))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    writer.release()


def _photo(path: Path, seed: int) -> None:
    image = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    path.write_bytes(cv2.imencode(path.suffix, image)[1].tobytes())


def _pts(path: Path, points: np.ndarray | None = None, body: str | None = None) -> None:
    if body is None:
        body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    path.write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n")


def _scripted(module, path: Path, meta: dict | None) -> None:
    import torch

    extra = {"fkd.json": json.dumps(meta)} if meta is not None else {}
    torch.jit.save(torch.jit.script(module), str(path), _extra_files=extra)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> World:
    import torch

    from fkd.model.metadata import base_metadata
    from fkd.train.data.kaggle import write_test_csv, write_training_csv

    w = World(tmp_path_factory.mktemp("hardening"))
    w.inp.mkdir()
    w.out.mkdir()
    _video(w / "clip.mp4")
    (w / "notvideo.mp4").write_text("this is not a video\n")
    (w / "folder").mkdir()
    os.mkfifo(w / "fifo.mp4")
    os.mkfifo(w / "fifo.csv")
    shutil.copy(w / "clip.mp4", os.fsencode(w.inp) + b"/bad-\xff\xfe-name.mp4")
    (w / "blocker").write_text("a file where a folder would have to be\n")

    photos = w / "photos"
    photos.mkdir()
    for i, name in enumerate(("a.jpg", "b.png")):
        _photo(photos / name, i)
    mixed = w / "mixed"  # one good photo, one broken, one FIFO named like a photo
    mixed.mkdir()
    _photo(mixed / "good.jpg", 3)
    (mixed / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    os.mkfifo(mixed / "pipe.jpg")
    (w / "photos.txt").write_text(f"{photos / 'a.jpg'}\n# one photo listed, one missing\n{w / 'missing.jpg'}\n")
    odd = w / "odd"  # a photo whose name is not UTF-8: read by bytes, fine
    odd.mkdir()
    _photo(odd / "plain.png", 5)
    shutil.copy(odd / "plain.png", os.fsencode(odd) + b"/ph\xffoto.png")
    (w / "empty").mkdir()
    nophotos = w / "nophotos"
    nophotos.mkdir()
    (nophotos / "x.jpg").write_bytes(b"nope")

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 96, 96), dtype=np.uint8)
    from fkd.model.schema import KAGGLE_MEAN

    points = np.repeat(KAGGLE_MEAN[None], 3, 0)
    write_training_csv(w / "training.csv", images, points, np.ones((3, 15), bool))
    write_training_csv(w / "unlabelled.csv", images, points, np.zeros((3, 15), bool))
    far = points.copy()
    far[2, 10, 1] = 1e9
    write_training_csv(w / "far.csv", images, far, np.ones((3, 15), bool))
    write_test_csv(w / "test.csv", np.array([1, 2, 3]), images)
    text = (w / "test.csv").read_text().splitlines()
    text[2] = "two" + text[2][text[2].index(","):]
    (w / "test_badid.csv").write_text("\n".join(text) + "\n")
    (w / "lookup.csv").write_text("RowId,ImageId,FeatureName\n1,1,nose_tip_x\n2,2,nose_tip_y\n3,3,left_eye_center_x\n")

    afw = sorted((shared / "data/300w/afw").glob("*.pts"))[:3]
    labelled = w / "pts"  # three real faces, then three broken labels: garbage, NaN, 1e9
    labelled.mkdir()
    for p in afw:
        shutil.copy(p, labelled)
        shutil.copy(p.with_suffix(".jpg"), labelled)
    from fkd.train.data.pts import read_pts

    real = read_pts(afw[0]) + 1.0
    for name, body in (("garbage", "hello world " * 68), ("nan", None), ("huge", None)):
        shutil.copy(afw[0].with_suffix(".jpg"), labelled / f"{name}.jpg")
        pts = real.copy()
        if name == "nan":
            pts[5, 0] = np.nan
        if name == "huge":
            pts[30, 1] = 1e9  # the nose tip, one of the 15 points kept
        _pts(labelled / f"{name}.pts", pts, body)
    allbad = w / "allbad"
    allbad.mkdir()
    shutil.copy(afw[0].with_suffix(".jpg"), allbad / "x.jpg")
    _pts(allbad / "x.pts", body="1 2 three")

    class Other(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)[:, :7]

    class WrongShape(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(x.shape[0], 10, 2)

    _scripted(Other(), w / "other.pt", None)
    _scripted(Other(), w / "fake_fkd.pt", base_metadata())
    _scripted(WrongShape(), w / "wrong_shape.pt", base_metadata())
    return w


def _hashes(folder: Path) -> dict[bytes, str]:
    """sha256 of every regular file under the inputs folder (FIFOs and folders by their names)."""
    out = {}
    for root, dirs, files in os.walk(os.fsencode(folder)):
        for name in dirs + files:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    out[path] = hashlib.sha256(f.read()).hexdigest()
            else:
                out[path] = "not a file"
    return out


Args = Callable[[World], list]


@dataclass
class Case:
    name: str
    command: str
    args: Args
    code: int
    says: tuple[str, ...] = ()  # fragments the one error sentence (or the warnings) must hold
    timeout: float = 90


def C(name: str, command: str, args: Args, code: int, *says: str, timeout: float = 90) -> Case:
    return Case(name, command, args, code, says, timeout)


def held_lock(w: World, name: str) -> Path:
    """An output whose lock another (this test's) process holds."""
    target = w.out / name
    w.held.append(OutputLock(target, "--test"))
    return target


def stale(w: World, name: str) -> Path:
    """A kill -9 leftover beside ``name`` in the outputs folder, old enough to be stale."""
    folder = w.out / f"stale-{name}"
    folder.mkdir(exist_ok=True)
    leftover = folder / f".{name}.abcd1234.fkd-tmp"
    leftover.write_text("half a file")
    os.utime(leftover, (1, 1))
    return folder / name


def stale_dir(w: World, name: str) -> Path:
    """An output folder holding a stale leftover of ``name``."""
    return stale(w, name).parent


class _Listening:
    """A port this test listens on, released with the other held things after the case."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]

    def release(self) -> None:
        self.socket.close()


def busy_port(w: World) -> str:
    """``--serve`` on a port another program (this test) listens on."""
    held = _Listening()
    w.held.append(held)
    return str(held.port)


LIVE = [
    C("live-points-68-on-15", "fkd-live",
      lambda w: ["--video", w / "clip.mp4", "--points", "68", "--weights", default_weights(), "--headless"], 2,
      "--points 68 needs a 68-point weights file"),
    C("camera-negative", "fkd-live", lambda w: ["--camera", "-1", "--headless"], 2, "--camera"),
    C("camera-huge", "fkd-live", lambda w: ["--camera", "99999999999", "--headless"], 2, "--camera"),
    C("live-threads-negative", "fkd-live", lambda w: ["--threads", "-1", "--video", w / "clip.mp4"], 2, "--threads"),
    C("live-threads-zero", "fkd-live", lambda w: ["--threads", "0", "--video", w / "clip.mp4"], 2, "--threads"),
    C("live-threshold-nan", "fkd-live", lambda w: ["--threshold", "nan", "--video", w / "clip.mp4"], 2,
      "--threshold"),
    C("live-fov-nan", "fkd-live", lambda w: ["--fov", "nan", "--video", w / "clip.mp4"], 2, "--fov"),
    C("live-fov-zero", "fkd-live", lambda w: ["--fov", "0", "--video", w / "clip.mp4"], 2, "--fov"),
    C("vmc-not-a-port", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--vmc", "avatar"], 2, "--vmc"),
    C("vmc-port-huge", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--vmc", "127.0.0.1:70000"], 2, "--vmc"),
    C("vmc-with-several-videos", "fkd-live", lambda w: ["--video", w / "clip.mp4", w / "clip.mp4", "--vmc", "9000",
                                                        "--export", w.out / "records"], 2, "--vmc"),
    C("live-max-faces-zero", "fkd-live", lambda w: ["--max-faces", "0", "--video", w / "clip.mp4"], 2,
      "--max-faces"),
    C("live-detect-every-zero", "fkd-live", lambda w: ["--detect-every", "0", "--video", w / "clip.mp4"], 2,
      "--detect-every"),
    C("live-width-huge", "fkd-live", lambda w: ["--width", "99999999999"], 2, "--width"),
    C("video-missing", "fkd-live", lambda w: ["--video", w / "missing.mp4", "--headless"], 1, "--video",
      "missing.mp4"),
    C("video-folder-without-videos", "fkd-live", lambda w: ["--video", w / "folder", "--export", w.out / "vf"], 1,
      "--video", "folder", "no video file"),
    C("video-fifo", "fkd-live", lambda w: ["--video", w / "fifo.mp4", "--headless"], 1, "--video", "fifo.mp4",
      "regular file", timeout=30),
    C("video-not-utf8-is-read", "fkd-live", lambda w: ["--video", os.fsencode(w.inp) + b"/bad-\xff\xfe-name.mp4",
                                                       "--headless"], 0, "12 frames read"),
    C("video-not-a-video", "fkd-live", lambda w: ["--video", w / "notvideo.mp4", "--headless"], 1, "notvideo.mp4"),
    C("video-and-camera", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--camera", "0"], 2, "--camera"),
    C("output-is-video", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--output", w / "clip.mp4",
                                                "--headless"], 2, "--output", "clip.mp4"),
    C("export-is-video", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--export", w / "clip.mp4",
                                                "--headless"], 2, "--export", "clip.mp4"),
    C("output-via-other-spelling", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--output",
                                                          w / "folder/../clip.mp4", "--headless"], 2, "--output"),
    C("export-is-weights", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--weights", w / "wrong_shape.pt",
                                                  "--export", w / "wrong_shape.pt", "--headless"], 2, "--export"),
    C("output-and-export-same", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--output", w.out / "same.mp4",
                                                       "--export", w.out / "same.mp4", "--headless"], 2,
      "--output", "--export"),
    C("output-folder", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--output", w.out, "--headless"], 2,
      "--output", "folder"),
    C("output-bad-suffix", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--output", w.out / "x.txt",
                                                  "--headless"], 2, "--output", ".mp4"),
    C("output-folder-blocked", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--output",
                                                      w / "blocker/sub/x.mp4", "--headless"], 1, "--output",
      "blocker"),
    C("export-folder-blocked", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--export",
                                                      w / "blocker/x.jsonl", "--headless"], 1, "--export", "blocker"),
    C("output-locked", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--output", held_lock(w, "busy.mp4"),
                                              "--headless"], 1, "--output", "another fkd run"),
    C("export-locked", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--export", held_lock(w, "busy.jsonl"),
                                              "--headless"], 1, "--export", "another fkd run"),
    C("weights-missing", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--weights", w / "none.pt"], 1, "none.pt"),
    C("weights-fifo", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--weights", w / "fifo.mp4"], 1, "fifo.mp4",
      timeout=30),
    C("weights-not-torchscript", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--weights", w / "training.csv"],
      1, "training.csv"),
    C("weights-other-network", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--weights", w / "other.pt"], 1,
      "other.pt"),
    C("weights-fake-fkd", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--weights", w / "fake_fkd.pt"], 1,
      "fake_fkd.pt", "not a working fkd network"),
    C("weights-wrong-shape", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--weights", w / "wrong_shape.pt"],
      1, "wrong_shape.pt", "not a working fkd network"),
    C("serve-not-a-port", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--serve", "web"], 2, "--serve",
      "[HOST:]PORT"),
    C("serve-port-huge", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--serve", "0.0.0.0:65536"], 2,
      "--serve", "65535"),
    C("serve-ipv6-without-brackets", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--serve", "::1:8080"], 2,
      "--serve", "[::]:8080"),
    C("serve-port-in-use", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--serve", busy_port(w)], 1,
      "--serve", "in use"),
    C("serve-not-this-machine", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--serve", "192.0.2.1:8080"], 1,
      "--serve", "not an address of this machine"),
    C("token-without-serve", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--token", "long-enough-token"], 2,
      "--token", "--serve"),
    C("token-too-short", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--serve", "0", "--token", "abc"], 2,
      "--token"),
    C("token-bad-characters", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--serve", "0", "--token",
                                                     "a token with spaces&x=1"], 2, "--token"),
    C("live-cleans-stale-temporaries", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--headless", "--export",
                                                              stale(w, "k.jsonl")], 0),
    C("live-writes-both", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--headless", "--export",
                                                 w.out / "ok.jsonl", "--output", w.out / "ok.mp4"], 0),
    C("videos-need-export-dir", "fkd-live", lambda w: ["--video", w / "clip.mp4", w / "clip.mp4"], 2,
      "--export DIR"),
    C("videos-export-is-file", "fkd-live", lambda w: ["--video", w / "clip.mp4", w / "clip.mp4", "--export",
                                                      w / "training.csv"], 2, "--export", "folder"),
    C("videos-export-jsonl", "fkd-live", lambda w: ["--video", w / "clip.mp4", w / "clip.mp4", "--export",
                                                    w.out / "v.jsonl"], 2, "--export", "folder"),
    C("videos-with-output", "fkd-live", lambda w: ["--video", w / "clip.mp4", w / "clip.mp4", "--export",
                                                   w.out / "v1", "--output", w.out / "v1.mp4"], 2, "--output"),
    C("videos-same-name", "fkd-live", lambda w: ["--video", w / "clip.mp4", w / "folder/../clip.mp4", "--export",
                                                 w.out / "v2"], 2, "clip.jsonl", "rename"),
    C("videos-glob-matches-nothing", "fkd-live", lambda w: ["--video", f"{w.inp}/*.mkv", "--export",
                                                            w.out / "v3"], 1, "--video", "matches no video"),
    C("videos-with-serve", "fkd-live", lambda w: ["--video", w / "clip.mp4", w / "clip.mp4", "--export",
                                                  w.out / "v6", "--serve", "0"], 2, "--serve"),
    C("videos-ray-bad-address", "fkd-live", lambda w: ["--video", w / "clip.mp4", "--ray=nowhere", "--export",
                                                       w.out / "v4"], 2, "--ray"),
    C("videos-skip-a-bad-one", "fkd-live", lambda w: ["--video", f"{w.inp}/*.mp4", "--export", w.out / "v5"], 3,
      "notvideo.mp4", "2 videos", "1 skipped"),
]

PREDICT = [
    C("predict-points-68-on-15", "fkd-predict",
      lambda w: [w / "photos", "--points", "68", "--weights", default_weights()], 2,
      "--points 68 needs a 68-point weights file"),
    C("predict-points-5", "fkd-predict", lambda w: [w / "photos", "--points", "5"], 2, "--points must be 15 or 68"),
    C("predict-missing", "fkd-predict", lambda w: [w / "nothing.jpg"], 1, "none of the 1 inputs"),
    C("predict-empty-folder", "fkd-predict", lambda w: [w / "empty"], 1, "no image files"),
    C("predict-all-unreadable", "fkd-predict", lambda w: [w / "nophotos"], 1, "none of the 1 inputs"),
    C("predict-skips-bad-photo-and-fifo", "fkd-predict", lambda w: [w / "mixed", "--export", w.out / "m.jsonl"], 3,
      "broken.jpg", "pipe.jpg", "2 skipped", timeout=60),
    C("predict-fifo-named", "fkd-predict", lambda w: [w / "fifo.mp4", w / "photos/a.jpg"], 3, "fifo.mp4",
      timeout=60),
    C("predict-non-utf8-name", "fkd-predict", lambda w: [w / "odd", "--output", w.out / "odd"], 0, "2 images"),
    C("predict-output-into-photos", "fkd-predict", lambda w: [w / "photos", "--output", w / "photos"], 2, "--output",
      "photos"),
    C("predict-output-inside-photos", "fkd-predict", lambda w: [w / "photos", "--output", w / "photos/annotated"],
      2, "--output", "photos"),
    C("predict-output-beside-named-photo", "fkd-predict", lambda w: [w / "photos/a.jpg", "--output", w / "photos"],
      2, "--output", "a.jpg"),
    C("predict-photos-inside-output", "fkd-predict", lambda w: [w / "photos", "--output", w.inp], 2, "--output"),
    C("predict-output-is-file", "fkd-predict", lambda w: [w / "photos", "--output", w / "blocker"], 2, "--output",
      "blocker"),
    C("predict-output-blocked", "fkd-predict", lambda w: [w / "photos", "--output", w / "blocker/sub"], 1,
      "--output", "blocker"),
    C("predict-export-onto-image", "fkd-predict", lambda w: [w / "photos", "--export", w / "photos/a.jpg"], 2,
      "--export", "a.jpg"),
    C("predict-json-onto-image", "fkd-predict", lambda w: [w / "photos/b.png", "--json", w / "photos/b.png"], 2,
      "--export", "b.png"),
    C("predict-export-folder", "fkd-predict", lambda w: [w / "photos", "--export", w.out], 2, "--export"),
    C("predict-export-locked", "fkd-predict", lambda w: [w / "photos", "--export", held_lock(w, "p.jsonl")], 1,
      "--export", "another fkd run"),
    C("predict-export-blocked", "fkd-predict", lambda w: [w / "photos", "--export", w / "blocker/p.jsonl"], 1,
      "--export", "blocker"),
    C("predict-threads-zero", "fkd-predict", lambda w: [w / "photos", "--threads", "0"], 2, "--threads"),
    C("predict-threshold-nan", "fkd-predict", lambda w: [w / "photos", "--threshold", "nan"], 2, "--threshold"),
    C("predict-fov-huge", "fkd-predict", lambda w: [w / "photos", "--fov", "180"], 2, "--fov"),
    C("predict-threshold-above-one", "fkd-predict", lambda w: [w / "photos", "--threshold", "2"], 2, "--threshold"),
    C("predict-weights-fake", "fkd-predict", lambda w: [w / "photos", "--weights", w / "fake_fkd.pt"], 1,
      "fake_fkd.pt"),
    C("predict-cleans-stale-temporaries", "fkd-predict", lambda w: [w / "photos", "--output",
                                                                     stale_dir(w, "a.jpg")], 0, "2 images"),
    C("predict-ok", "fkd-predict", lambda w: [w / "photos", "--output", w.out / "ann", "--export",
                                              w.out / "ok-photos.jsonl"], 0, "2 images"),
    C("predict-workers-zero", "fkd-predict", lambda w: [w / "photos", "--workers", "0"], 2, "--workers"),
    C("predict-uri-without-ray", "fkd-predict", lambda w: ["s3://bucket/photos/"], 2, "s3://bucket", "--ray"),
    C("predict-list-and-glob", "fkd-predict", lambda w: [w / "photos.txt", f"{w.inp}/photos/*.png"], 3,
      "missing.jpg", "2 images", "1 skipped"),
    C("predict-ray-bad-address", "fkd-predict", lambda w: [w / "photos", "--ray=nowhere", "--export", w.out / "r1"],
      2, "--ray", "nowhere"),
    C("predict-ray-needs-an-output", "fkd-predict", lambda w: [w / "photos", "--ray"], 2, "--export DIR"),
    C("predict-ray-no-cluster-there", "fkd-predict", lambda w: [w / "photos", "--ray", "127.0.0.1:1", "--export",
                                                                 w.out / "r2"], 1, "--ray 127.0.0.1:1",
      "no Ray cluster could be reached"),
    C("predict-ray-export-is-file", "fkd-predict", lambda w: [w / "photos", "--ray", "--export", w / "training.csv"],
      2, "--export", "folder"),
    C("predict-ray-export-into-photos", "fkd-predict", lambda w: [w / "photos", "--ray", "--export",
                                                                   w / "photos/shards"], 2, "--export", "photos"),
    C("predict-ray-export-locked", "fkd-predict", lambda w: [w / "photos", "--ray", "--export",
                                                              held_lock(w, "shards")], 1, "--export",
      "another fkd run"),
]

TRAIN = [
    C("train-lr-nan", "fkd-train", lambda w: ["--data", w / "training.csv", "--lr", "nan"], 2, "--lr"),
    C("train-lr-zero", "fkd-train", lambda w: ["--data", w / "training.csv", "--lr", "0"], 2, "--lr"),
    C("train-lr-negative", "fkd-train", lambda w: ["--data", w / "training.csv", "--lr", "-1"], 2, "--lr"),
    C("train-lr-inf", "fkd-train", lambda w: ["--data", w / "training.csv", "--lr", "inf"], 2, "--lr"),
    C("train-threads-negative", "fkd-train", lambda w: ["--data", w / "training.csv", "--threads", "-1"], 2,
      "--threads"),
    C("train-epochs-zero", "fkd-train", lambda w: ["--data", w / "training.csv", "--epochs", "0"], 2, "--epochs"),
    C("train-batch-zero", "fkd-train", lambda w: ["--data", w / "training.csv", "--batch-size", "0"], 2,
      "--batch-size"),
    C("train-val-fraction-nan", "fkd-train", lambda w: ["--data", w / "training.csv", "--val-fraction", "nan"], 2,
      "--val-fraction"),
    C("train-val-fraction-big", "fkd-train", lambda w: ["--data", w / "training.csv", "--val-fraction", "1.5"], 2,
      "--val-fraction"),
    C("train-seed-negative", "fkd-train", lambda w: ["--data", w / "training.csv", "--seed", "-1"], 2, "--seed"),
    C("train-width-huge", "fkd-train", lambda w: ["--data", w / "training.csv", "--width", "100000"], 2, "--width"),
    C("train-loss-unknown", "fkd-train", lambda w: ["--data", w / "training.csv", "--loss", "bogus"], 2, "--loss"),
    C("train-score-only-without-init", "fkd-train", lambda w: ["--data", w / "training.csv", "--score-only", "-o",
                                                                w.out / "r8"], 2, "--score-only", "--init"),
    C("train-data-missing", "fkd-train", lambda w: ["--data", w / "none.csv", "-o", w.out / "r1"], 1,
      "none.csv", "no such file or folder"),
    C("train-data-fifo", "fkd-train", lambda w: ["--data", w / "fifo.csv", "-o", w.out / "r2"], 1, "--data",
      "fifo.csv", timeout=30),
    C("train-output-is-file", "fkd-train", lambda w: ["--data", w / "training.csv", "-o", w / "blocker"], 2,
      "--output", "blocker"),
    C("train-output-blocked", "fkd-train", lambda w: ["--data", w / "training.csv", "-o", w / "blocker/run"], 1,
      "--output", "blocker"),
    C("train-output-is-data", "fkd-train", lambda w: ["--data", w / "pts", "-o", w / "pts"], 2, "--output"),
    C("train-cache-is-file", "fkd-train", lambda w: ["--data", w / "pts", "--cache-dir", w / "blocker", "-o",
                                                     w.out / "r3"], 2, "--cache-dir"),
    C("train-no-labels", "fkd-train", lambda w: ["--data", w / "unlabelled.csv", "-o", w.out / "r4"], 1,
      "unlabelled.csv", "no row has a keypoint label"),
    C("train-csv-coordinate-1e9", "fkd-train", lambda w: ["--data", w / "far.csv", "-o", w.out / "r7"], 1,
      "far.csv", "row 4", "far outside"),
    C("train-all-labels-broken", "fkd-train", lambda w: ["--data", w / "allbad", "-o", w.out / "r5",
                                                         "--cache-dir", w.out / "cache5"], 1, "allbad",
      "dropped 1 face"),
    C("train-cleans-stale-temporaries", "fkd-train", lambda w: ["--data", w / "unlabelled.csv", "-o",
                                                                 stale_dir(w, "last.pt")], 1, "unlabelled.csv"),
    C("train-resume-nothing", "fkd-train", lambda w: ["--resume", "-o", w.out / "r6"], 1, "--resume"),
]

EVAL = [
    C("eval-data-missing", "fkd-eval", lambda w: [w / "none.csv"], 1, "none.csv"),
    C("eval-data-fifo", "fkd-eval", lambda w: [w / "fifo.csv"], 1, "fifo.csv", timeout=30),
    C("eval-no-labels", "fkd-eval", lambda w: [w / "unlabelled.csv"], 1, "unlabelled.csv"),
    C("eval-export-onto-data", "fkd-eval", lambda w: [w / "training.csv", "--export", w / "training.csv"], 2,
      "--export", "training.csv"),
    C("eval-export-folder", "fkd-eval", lambda w: [w / "training.csv", "--export", w.out], 2, "--export"),
    C("eval-export-blocked", "fkd-eval", lambda w: [w / "training.csv", "--export", w / "blocker/m.json"], 1,
      "--export", "blocker"),
    C("eval-weights-wrong-shape", "fkd-eval", lambda w: [w / "training.csv", "--weights", w / "wrong_shape.pt"], 1,
      "wrong_shape.pt"),
    C("eval-drops-broken-labels", "fkd-eval", lambda w: [w / "pts", "--cache-dir", w.out / "cache-e",
                                                         "--export", w.out / "e.json"], 0, "dropped 3 face(s)"),
    C("eval-read-only-cache", "fkd-eval", lambda w: [w / "pts", "--cache-dir", "/proc/fkd-cache"], 0,
      "cannot write the cache", "going on without it"),
]

SUBMIT = [
    C("submit-image-id-not-integer", "fkd-submit", lambda w: [w / "test_badid.csv", w / "lookup.csv", "-o",
                                                              w.out / "s1.csv"], 1, "ImageId", "'two'"),
    C("submit-output-folder", "fkd-submit", lambda w: [w / "test.csv", w / "lookup.csv", "-o", w.out], 2,
      "--output", "folder"),
    C("submit-output-is-test", "fkd-submit", lambda w: [w / "test.csv", w / "lookup.csv", "-o", w / "test.csv"], 2,
      "--output", "test.csv"),
    C("submit-output-is-lookup", "fkd-submit", lambda w: [w / "test.csv", w / "lookup.csv", "-o",
                                                          w / "lookup.csv"], 2, "--output", "lookup.csv"),
    C("submit-output-blocked", "fkd-submit", lambda w: [w / "test.csv", w / "lookup.csv", "-o",
                                                        w / "blocker/s.csv"], 1, "--output", "blocker"),
    C("submit-output-locked", "fkd-submit", lambda w: [w / "test.csv", w / "lookup.csv", "-o",
                                                       held_lock(w, "s.csv")], 1, "--output", "another fkd run"),
    C("submit-test-missing", "fkd-submit", lambda w: [w / "none.csv", w / "lookup.csv"], 1, "none.csv"),
    C("submit-test-fifo", "fkd-submit", lambda w: [w / "fifo.csv", w / "lookup.csv"], 1, "fifo.csv", timeout=30),
    C("submit-lookup-fifo", "fkd-submit", lambda w: [w / "test.csv", w / "fifo.csv"], 1, "fifo.csv", timeout=30),
    C("submit-weights-other", "fkd-submit", lambda w: [w / "test.csv", w / "lookup.csv", "--weights",
                                                       w / "other.pt", "-o", w.out / "s2.csv"], 1, "other.pt"),
    C("submit-ok", "fkd-submit", lambda w: [w / "test.csv", w / "lookup.csv", "-o", w.out / "s3.csv"], 0),
]

CASES = LIVE + PREDICT + TRAIN + EVAL + SUBMIT


def test_the_table_is_wide_enough() -> None:
    assert len(CASES) >= 60 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_console_script(case: Case, world: World) -> None:
    args = [a if isinstance(a, bytes) else str(a) for a in case.args(world)]
    before = _hashes(world.inp)
    try:
        result = subprocess.run([str(BIN / case.command), *args], capture_output=True, timeout=case.timeout,
                                cwd=world.out, env=ENV)
    finally:
        for lock in world.held:
            lock.release()
        world.held.clear()
    stderr = result.stderr.decode("utf-8", "backslashreplace")
    shown = f"exit {result.returncode}\nstderr:\n{stderr}\nstdout:\n{result.stdout.decode(errors='replace')[-2000:]}"
    assert result.returncode >= 0, f"killed by signal {-result.returncode}\n{shown}"
    assert "Traceback" not in stderr and "Traceback" not in result.stdout.decode(errors="replace"), shown
    assert result.returncode == case.code, shown
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    if case.code in (1, 2) and errors:  # fkd's own refusal: exactly one sentence
        assert len(errors) == 1 and errors[0].rstrip().endswith("."), shown
    elif case.code in (1, 2):  # typer's own range check names the flag in its panel
        assert "Invalid value" in stderr or "No such option" in stderr, shown
    else:
        assert not errors, shown
    for fragment in case.says:
        assert fragment in stderr, f"{fragment!r} not in stderr\n{shown}"
    assert _hashes(world.inp) == before, "an input file changed"
    if "cleans-stale" in case.name:
        assert not list(world.out.glob("stale-*/.*fkd-tmp")), "a kill -9 leftover is still there"
    if case.name == "live-cleans-stale-temporaries":
        assert (world.out / "stale-k.jsonl/k.jsonl").is_file()
    if case.name == "live-writes-both":
        lines = (world.out / "ok.jsonl").read_text().splitlines()
        capture = cv2.VideoCapture(str(world.out / "ok.mp4"))
        frames = 0
        while capture.read()[0]:
            frames += 1
        assert len(lines) == frames == 12
        assert not list(world.out.glob(".*fkd-*")), "a temporary or lock file was left behind"
