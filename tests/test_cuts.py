"""Scene cuts start a search: the cut threshold on the shared clips, a file's new shot reported from
the cut's own frame, and live, a search at once on the worker while the loop goes on.

No shared clip has a cut, so the clips here join two of them end to end (mp4v, in a tmp folder).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import write_clip

from fkd.model.artifact import Predictor
from fkd.model.detect import Detection, FaceDetector
from fkd.realtime.live import LiveConfig, run_live
from fkd.realtime.sources.video import open_video
from fkd.realtime.tracking.cuts import CutDetector
from fkd.realtime.tracking.detection import BackgroundDetection
from fkd.realtime.tracking.pipeline import live_pipeline
from fkd.realtime.tracking.tracks import Track, Tracker

pytestmark = pytest.mark.usefixtures("restore_threads")

CLIPS = ("crowd_walk_640x360.mp4", "talking_head_512.mp4", "three_people_lab_640x480.mp4", "webcam_320x240.mp4",
         "webcam_640x360_backlit.mp4")


def read_frames(clip: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while (frame := cap.read()[1]) is not None:
        frames.append(frame)
    cap.release()
    return frames


def join(first: list[np.ndarray], second: list[np.ndarray]) -> list[np.ndarray]:
    h, w = first[0].shape[:2]
    return first + [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in second]


@pytest.fixture(scope="module")
def clips(shared: Path) -> dict[str, list[np.ndarray]]:
    return {name: read_frames(shared / "video" / name) for name in CLIPS}


def test_no_cut_inside_a_real_clip_and_every_join_is_one(clips: dict[str, list[np.ndarray]]) -> None:
    """Every shared clip, frame by frame: talking, walking, turning, backlight are no cut. Any
    two of them joined end to end (the second resized to the first's size) are one, at the join."""
    for name, frames in clips.items():
        cuts = CutDetector()
        assert not any(cuts(frame, index) for index, frame in enumerate(frames)), name
    for (a, first), (b, second) in itertools.permutations(clips.items(), 2):
        cuts = CutDetector()
        last, start = join([first[-1]], [second[0]])
        assert not cuts(last, 0) and cuts(start, 1), (a, b)


def test_a_frame_is_compared_only_with_the_one_before() -> None:
    """A file read ahead feeds frames from its lag on; a gap, or a frame seen before, is no cut."""
    cuts = CutDetector()
    dark, light = np.zeros((48, 64), np.uint8), np.full((48, 64), 200, np.uint8)
    assert not cuts(dark, 0)
    assert not cuts(light, 3)  # not the next frame: no evidence
    assert not cuts(dark, 3)  # seen
    assert cuts(dark, 4)


@pytest.fixture(scope="module")
def predictor(shipped_weights: Path) -> Predictor:
    return Predictor(Path(os.environ.get("FKD_TEST_WEIGHTS", shipped_weights)), threads=1)


def run_file(predictor: Predictor, clip: Path, export: Path, cuts: CutDetector | None = None) -> list[dict]:
    pipeline = live_pipeline(predictor, live=False)
    if cuts is not None:
        pipeline.tracker.cuts = cuts
    run_live(open_video(clip), pipeline, LiveConfig(export=str(export), headless=True))
    return [json.loads(line) for line in export.read_text().splitlines()]


@pytest.mark.parametrize("cut", [34, 41])
def test_a_file_reports_the_new_shot_from_the_cut(predictor: Predictor, clips: dict[str, list[np.ndarray]],
                                                  tmp_path: Path, cut: int) -> None:
    """A talking head, then three people. The detector runs on the cut's frame (read ahead, so the
    loop need not wait) and their faces are reported from it; the talking head's track ends there.
    Before, the head's track went on on the new shot for its patience and a search came five frames
    late (``CutDetector`` that never fires, below). Cut at 34 the search is asked while the routine
    request made at frame 30 is still in flight; the same file gives the same records."""
    frames = join(clips["talking_head_512.mp4"][:cut], clips["three_people_lab_640x480.mp4"][100:140])
    clip = write_clip(tmp_path / "joined.mp4", frames, fps=25, fourcc="mp4v")
    records = run_file(predictor, clip, tmp_path / "a.jsonl")
    head = {face["id"] for record in records[:cut] for face in record["faces"]}
    assert len(head) == 1
    after = records[cut:cut + 8]
    assert all(len(record["faces"]) >= 2 for record in after), [len(r["faces"]) for r in after]
    assert not any(face["id"] in head for record in records[cut:] for face in record["faces"])
    assert run_file(predictor, clip, tmp_path / "b.jsonl") == records
    blind = run_file(predictor, clip, tmp_path / "c.jsonl", CutDetector(threshold=float("inf")))
    no_new_face = [all(face["id"] in head for face in record["faces"]) for record in blind[cut:cut + 8]]
    assert sum(no_new_face) >= 3, no_new_face


class GatedDetector(FaceDetector):
    """YuNet that waits for ``gate`` before each pass: a detector as slow as the test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.passes = threading.Semaphore(0)  # released once per finished pass

    def detect(self, image: np.ndarray, min_face: int, max_side: int | None = None) -> list[Detection]:
        assert self.gate.wait(30)
        found = super().detect(image, min_face, max_side)
        self.passes.release()
        return found


def test_live_a_cut_starts_a_search_at_once_and_the_loop_does_not_wait(clips: dict[str, list[np.ndarray]]) -> None:
    """Live, with a face held, the routine search is a second away (the clock here never moves).
    A cut asks for one at once on the worker; the loop goes on while it runs, and when it comes
    back the held face the new shot lacks ends, and the new shot's faces are candidates."""
    head = clips["talking_head_512.mp4"][0]
    people = join([head], [clips["three_people_lab_640x480.mp4"][100]])[1]
    detector = GatedDetector()
    detector.gate.set()
    tracker = Tracker(BackgroundDetection(detector, live=True, clock=lambda: 0.0), threshold=0.5)
    try:
        (face,) = FaceDetector().detect(head, min_face=20)
        tracker.tracks = [Track(id=0, square=face.square, smoother=None, from_detector=False)]
        tracker.plan(head, 0)
        assert detector.passes.acquire(timeout=30)
        assert tracker.plan(head, 1) == tracker.tracks and tracker.detection.calls == 1  # the held face only
        detector.gate.clear()  # the cut's search will run as long as the test lets it
        start = time.perf_counter()
        assert [tr.id for tr in tracker.plan(people, 2)] == [0]  # asked, not back: the held face is cropped
        assert [tr.id for tr in tracker.plan(people, 3)] == [0]
        assert time.perf_counter() - start < 5 and tracker.detection.calls == 2
        detector.gate.set()
        assert detector.passes.acquire(timeout=30)
        tracks = tracker.plan(people, 4)
        assert tracker.detection.new_shot
        assert len(tracks) >= 2 and all(tr.id < 0 for tr in tracks)  # the head has ended; three candidates
    finally:
        detector.gate.set()
        tracker.close()
