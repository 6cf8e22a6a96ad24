"""Tracking by face score, detector candidates and detection pacing, on real clips, photos and weights.

Tests that need the face score head run on FKD_TEST_WEIGHTS when it is set (for example
runs/interim/fkd.pt) and on the shipped weights otherwise; they skip, saying so, while those
weights have no score head.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import clip_frames, write_clip
from typer.testing import CliRunner

from fkd.model.artifact import Predictor
from fkd.model.crop import Square, box_iou
from fkd.model.detect import FaceDetector
from fkd.realtime.cli import live_app, predict_app
from fkd.realtime.live import LiveConfig, run_live
from fkd.realtime.sources.video import VideoSource
from fkd.realtime.tracking.detection import Pacing
from fkd.realtime.tracking.pipeline import StageTimes, live_pipeline, photo_pipeline, run_on
from fkd.realtime.tracking.tracks import Track
from fkd.train.data.pts import read_pts

pytestmark = pytest.mark.usefixtures("restore_threads")

#: An AFW face turned to profile (the Haar cascades fkd used before YuNet found it only with a profile pass).
PROFILE_PHOTO = "data/300w/afw/2060241469_1"


@pytest.fixture(scope="module")
def weights(shipped_weights: Path) -> Path:
    return Path(os.environ.get("FKD_TEST_WEIGHTS", shipped_weights))


@pytest.fixture(scope="module")
def predictor(weights: Path) -> Predictor:
    return Predictor(weights, threads=1)


@pytest.fixture(scope="module")
def scored(predictor: Predictor) -> Predictor:
    if not predictor.has_score:
        pytest.skip(f"{predictor.path} has no face score head (set FKD_TEST_WEIGHTS to weights that have one)")
    return predictor


def noise(shape: tuple[int, ...], count: int, level: int = 90) -> list[np.ndarray]:
    """Flat grey frames with camera noise, so that no two are alike."""
    rng = np.random.default_rng(0)
    return [np.clip(level + rng.integers(-4, 5, shape), 0, 255).astype(np.uint8) for _ in range(count)]


def test_track_fields_are_keyword_only(predictor: Predictor, shared: Path) -> None:
    """Track(id, square, smoother, t) once put a time into ``keypoints``; by position it is refused now,
    and every track the tracker starts has no keypoints until the network gave it some."""
    square = Square(10, 10, 50)
    with pytest.raises(TypeError):
        Track(0, square, None, 1.5)  # type: ignore[misc]
    pipeline = live_pipeline(predictor, live=False)
    gray = cv2.cvtColor(clip_frames(shared / "video/webcam_320x240.mp4", 1)[0], cv2.COLOR_BGR2GRAY)
    try:
        for index in range(8):
            faces = pipeline.process(gray, index, index / 30, StageTimes())
            for track in pipeline.tracker.tracks:
                assert track.keypoints is None or np.shape(track.keypoints) == (15, 2)
        assert faces and all(np.shape(t.keypoints) == (15, 2) for t in pipeline.tracker.tracks if t.frames)
    finally:
        pipeline.tracker.close()


def test_track_ends_within_three_frames_of_the_face_leaving(scored: Predictor, shared: Path) -> None:
    """A real clip with its frames blanked from frame 60 on: the face's track is gone by frame 62."""
    frames = clip_frames(shared / "video/webcam_320x240.mp4", 60)
    frames += noise(frames[0].shape, 30)
    pipeline = live_pipeline(scored, live=False)
    reported = []
    try:
        for index, frame in enumerate(frames):
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            reported.append(pipeline.process(gray, index, index / 30, StageTimes()))
            if index == 62:
                assert pipeline.tracker.tracks == [], [(t.id, t.score) for t in pipeline.tracker.tracks]
    finally:
        pipeline.tracker.close()
    assert sum(bool(faces) for faces in reported[:60]) >= 50  # the first detection is merged at frame 6
    assert not any(reported[60:]), "a face was reported on a blank frame"


@pytest.mark.parametrize("mirrored", [False, True])
def test_a_profile_face_turned_either_way_is_a_candidate(shared: Path, mirrored: bool) -> None:
    """One detector pass proposes a face in profile, whichever way it is turned."""
    gray = cv2.imread(str(shared / f"{PROFILE_PHOTO}.jpg"), cv2.IMREAD_GRAYSCALE)
    points = read_pts(shared / f"{PROFILE_PHOTO}.pts")
    if mirrored:
        gray = np.ascontiguousarray(gray[:, ::-1])
        points[:, 0] = gray.shape[1] - 1 - points[:, 0]
    lo, hi = points.min(0), points.max(0)
    found = FaceDetector().detect(gray, min_face=20)
    assert max((box_iou(d.box, (*lo, *(hi - lo))) for d in found), default=0) >= 0.3


def test_a_mirrored_profile_face_is_found(scored: Predictor, shared: Path) -> None:
    image = cv2.imread(str(shared / f"{PROFILE_PHOTO}.jpg"))
    flipped = np.ascontiguousarray(image[:, ::-1])
    points = read_pts(shared / f"{PROFILE_PHOTO}.pts")
    points[:, 0] = image.shape[1] - 1 - points[:, 0]
    lo, hi = points.min(0), points.max(0)
    faces = photo_pipeline(scored).process(flipped)
    assert max((box_iou(f.box, (*lo, *(hi - lo))) for f in faces), default=0) >= 0.3


def test_records_carry_the_score(predictor: Predictor, weights: Path, shared: Path, tmp_path: Path) -> None:
    photos = sorted((shared / "data/300w/lfpw_train").glob("*.jpg"))[:3]
    out = tmp_path / "faces.jsonl"
    result = CliRunner().invoke(predict_app, [*map(str, photos), "--weights", str(weights), "--export", str(out)])
    assert result.exit_code == 0, result.output
    faces = [f for line in out.read_text().splitlines() for f in json.loads(line)["faces"]]
    clip = write_clip(tmp_path / "clip.avi", clip_frames(shared / "video/webcam_320x240.mp4", 30))
    out = tmp_path / "frames.jsonl"
    result = CliRunner().invoke(live_app, ["--video", str(clip), "--weights", str(weights), "--headless",
                                           "--export", str(out)])
    assert result.exit_code == 0, result.output
    faces += [f for line in out.read_text().splitlines() for f in json.loads(line)["faces"]]
    assert len(faces) >= 3 + 20  # a face in each photo, and on the frames after the first detection (frame 6)
    for face in faces:
        assert list(face) == ["id", "box", "score", "keypoints", "pose", "position", "expression"]
        assert predictor.threshold <= face["score"] <= 1.0
        if not predictor.has_score:
            assert face["score"] == 1.0


def test_the_same_file_gives_the_same_jsonl(weights: Path, shared: Path, tmp_path: Path) -> None:
    """Three people, with stretches blanked: detection comes back at fixed frames, whatever the timing."""
    frames = clip_frames(shared / "video/three_people_lab_640x480.mp4", 80)
    frames[20:35] = noise(frames[0].shape, 15)
    clip = write_clip(tmp_path / "people.avi", frames)
    runs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        result = CliRunner().invoke(live_app, ["--video", str(clip), "--weights", str(weights), "--headless",
                                               "--export", str(out)])
        assert result.exit_code == 0, result.output
        runs.append(out.read_bytes())
    assert runs[0] == runs[1]
    assert any(json.loads(line)["faces"] for line in runs[0].splitlines())


@pytest.mark.parametrize("live", [True, False])
def test_with_no_face_the_loop_does_not_wait_on_detection(predictor: Predictor, tmp_path: Path, live: bool) -> None:
    """A blank scene. Live, detection runs in the background and the loop never waits for it; on a
    file it is requested every ``Pacing().idle_frames``-th frame (merged a fixed number of frames later, so the output
    never depends on timing)."""
    clip = write_clip(tmp_path / "blank.avi", noise((240, 320, 3), 60))
    source = VideoSource(cv2.VideoCapture(str(clip)), "blank", live=live)
    pipeline = live_pipeline(predictor, live=live)
    summary = run_live(source, pipeline, LiveConfig(headless=True))
    assert summary.frames == 60 and summary.frames_with_face == 0
    if live:
        assert summary.detections >= 1 and summary.detection_waits == 0
    else:
        assert summary.detections == 60 // Pacing().idle_frames and summary.detection_waits <= summary.detections


def test_a_face_crossing_the_frame_fast_is_followed(scored: Predictor, weights: Path, shared: Path,
                                                   tmp_path: Path) -> None:
    """A real face (50 px) pasted on camera noise, moving a third of its width per frame, as a
    passer-by close to the camera does on crowd_walk. The detector's request is made on the frame
    it is merged into, and each crop is moved on by the face's last step, so the face is reported
    on nearly every frame from the first, with its nose on the face. Before both (boxes two frames
    old, crops from the last frame's keypoints) it was reported on none. Several videos at once
    (realtime/batch/video_work.py) read ahead the same way: the same records."""
    photo = cv2.imread(str(shared / "data/300w/lfpw_train/image_0001.jpg"))
    assert photo is not None
    face = cv2.resize(photo, (100, 100), interpolation=cv2.INTER_AREA)  # the crop is twice the face: a 50 px face
    background = noise((240, 560, 3), 28)
    frames, centres = [], []
    for index, frame in enumerate(background):
        x = 10 + 16 * index
        frame[70:170, x:x + 100] = face
        frames.append(frame)
        centres.append((x + 50, 120))
    clip = write_clip(tmp_path / "crossing.avi", frames)
    write_clip(tmp_path / "again.avi", frames)
    export = tmp_path / "k.jsonl"
    one = CliRunner().invoke(live_app, ["--video", str(clip), "--weights", str(weights), "--headless",
                                        "--export", str(export)])
    assert one.exit_code == 0, one.output
    records = [json.loads(line) for line in export.read_text().splitlines()]
    both = CliRunner().invoke(live_app, ["--video", str(clip), str(tmp_path / "again.avi"), "--weights",
                                         str(weights), "--workers", "1", "--export", str(tmp_path / "both")])
    assert both.exit_code == 0, both.output
    assert (tmp_path / "both" / "crossing.jsonl").read_text() == export.read_text()
    on_face = [any(abs(f["keypoints"]["nose_tip"][0] - cx) < 25 and abs(f["keypoints"]["nose_tip"][1] - cy) < 25
                   for f in record["faces"]) for record, (cx, cy) in zip(records, centres)]
    assert len(records) == len(frames)
    assert on_face[0], "the first request on a file is run at once, on its first frame"
    assert sum(on_face) >= 0.9 * len(frames), on_face


@pytest.mark.parametrize(("first", "second", "taken"), [(0.001, 0.6, False), (0.3, 0.9, True), (0.6, 0.001, False)])
def test_a_candidate_is_decided_on_its_two_crops_together(predictor: Predictor, shared: Path, first: float,
                                                          second: float, taken: bool) -> None:
    """A real face from YuNet on a real frame; the network's keypoints for it, and face scores given
    for its two crops (the detector's, then the one cut from its keypoints). Their mean decides: a
    second crop that scores well cannot carry a first that says "no face" (a shop display beside
    a turned head on crowd_walk did that)."""
    image = clip_frames(shared / "video/webcam_320x240.mp4", 1)[0]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    pipeline = live_pipeline(predictor, live=False, threshold=0.5)
    tracker = pipeline.tracker
    try:
        for frame in range(Pacing().lag_frames + 1):
            candidates = tracker.plan(image, frame)
        assert candidates and all(tr.id < 0 for tr in candidates)
        size = (gray.shape[1], gray.shape[0])
        points, _ = run_on(predictor.run, gray, [tr.square for tr in candidates])
        assert tracker.update(candidates, points, np.full(len(candidates), first), 0.0, size) == []
        again = tracker.refine()
        assert len(again) == len(candidates)
        points, _ = run_on(predictor.run, gray, [tr.square for tr in again])
        reported = tracker.update(again, points, np.full(len(again), second), 0.0, size)
        assert bool(reported) == taken
        assert all(tr.id >= 0 for tr in reported)
    finally:
        tracker.close()


@pytest.mark.parametrize("count", [1, 2])
def test_a_clip_shorter_than_the_detectors_lag_still_gets_its_faces(weights: Path, shared: Path, tmp_path: Path,
                                                                    count: int) -> None:
    """fkd-live reads a file ahead by the detector's lag (3 frames); a clip that ends first gets its
    request run on the frame at hand, so a one- or two-frame clip of a face reports it."""
    clip = write_clip(tmp_path / "short.avi", clip_frames(shared / "video/webcam_320x240.mp4", count))
    export = tmp_path / "k.jsonl"
    result = CliRunner().invoke(live_app, ["--video", str(clip), "--weights", str(weights), "--headless",
                                           "--export", str(export)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert len(records) == count and len(records[0]["faces"]) == 1
