"""Memory of fkd-live's loop over a long run: RSS every 10,000 frames of a shared clip, looped.

    python bench/live_memory.py                       # 100,000 frames, the issue 9 target
    python bench/live_memory.py --frames 20000 --every 2000   # a quicker look

The whole loop runs as fkd-live runs it (reader thread, background detection, tracking, the
model, drawing), headless and with no outputs, on a clip looped end to end with its frame
numbers and times running on, so the tracker sees one long video. The target: RSS after
100k frames within 5 MB of RSS after 5k (warm-up allocations done by then). Before the
timings went into fixed-size reservoirs (realtime/timing.py) the loop grew ~330 bytes a frame.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from fkd.model.artifact import Predictor
from fkd.realtime.live import LiveConfig, run_live
from fkd.realtime.sources.video import Frame, open_video
from fkd.realtime.tracking.pipeline import live_pipeline

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared/video/talking_head_512.mp4"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident set size now (not the peak), from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class LoopedClip:
    """A video file played end to end over and over, as one source of ``total`` frames.

    Each pass reopens the file (as fkd-live would a new file), so decoder state is part of
    what is measured; frame numbers and times keep counting across passes.
    """

    def __init__(self, path: Path, total: int, marks: dict[int, float], every: int) -> None:
        self.path, self.total, self.marks, self.every = path, total, marks, every
        first = open_video(path)
        self.name = f"{path.name} looped"
        self.live = False
        self.fps, self.width, self.height = first.fps, first.width, first.height
        first.close()
        self.frame_count = total
        self.frames_read = 0
        self.started = time.perf_counter()

    def __iter__(self) -> Iterator[Frame]:
        while self.frames_read < self.total:
            with open_video(self.path) as clip:
                for frame in clip:
                    if self.frames_read >= self.total:
                        return
                    n = self.frames_read
                    if n in (5000,) or (n and n % self.every == 0):
                        self.marks[n] = rss_mb()
                        print(f"{n:>7} frames  RSS {self.marks[n]:8.1f} MB  "
                              f"{n / (time.perf_counter() - self.started):5.1f} fps", flush=True)
                    yield Frame(n, n / self.fps, frame.image)
                    self.frames_read += 1

    def close(self) -> None:
        pass

    def notes(self) -> list[str]:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--clip", type=Path, default=CLIP)
    args = parser.parse_args()
    if not args.clip.is_file():
        sys.exit(f"needs the shared clip {args.clip}")
    marks: dict[int, float] = {}
    source = LoopedClip(args.clip, args.frames, marks, args.every)
    predictor = Predictor(threads=1)
    print(f"{args.clip.name} looped to {args.frames} frames; RSS at start {rss_mb():.1f} MB", flush=True)
    summary = run_live(source, live_pipeline(predictor, live=False), LiveConfig(headless=True))  # type: ignore[arg-type]
    marks[summary.frames] = rss_mb()
    print(f"{summary.frames:>7} frames  RSS {marks[summary.frames]:8.1f} MB  (end; {summary.fps:.1f} fps overall, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB)")
    if 5000 in marks:
        growth = marks[summary.frames] - marks[5000]
        verdict = "within" if abs(growth) <= 5.0 else "OVER"
        print(f"RSS after {summary.frames} frames minus RSS after 5000: {growth:+.1f} MB ({verdict} the 5 MB target)")


if __name__ == "__main__":
    main()
