"""Keypoints at scale: every core of one machine (--workers), then Ray (--ray), for photos and videos.

The Ray tests run on a local Ray that this module starts (2 CPUs). Commands run in this process
use it as it is; commands run as subprocesses join it with ``--ray auto``, as a user joins a
cluster started by ``ray start --head``. Workers are killed and runs interrupted for real: no
part of the code under test is replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from fkd.realtime.batch.expand import expand_photos, plain_name
from fkd.realtime.batch.ray_option import with_ray_default
from fkd.realtime.batch.shards import ShardWriter, done_images
from fkd.realtime.cli import live_app, predict_app

BIN = Path(sys.executable).parent
PHOTOS = 120
ODD = b"odd-\xff\xfe"  # a name that is not UTF-8: OpenCV cannot open it as such, fkd reads it anyway

pytestmark = pytest.mark.usefixtures("restore_threads")


def run(app, *args: object):
    return CliRunner().invoke(app, [a if isinstance(a, str) else os.fsdecode(a) for a in args])


def records_in(folder: Path) -> list[dict]:
    return [json.loads(line) for shard in sorted(folder.glob("part-*.jsonl")) for line in shard.open()]


@pytest.fixture(scope="module")
def photos(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 real 300-W photos (more than two Ray batches each) and one broken file named like a photo."""
    root = tmp_path_factory.mktemp("scale") / "set"
    root.mkdir()
    for jpg in sorted((shared / "data/300w/helen_train").glob("*.jpg"))[:PHOTOS]:
        shutil.copy(jpg, root)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


@pytest.fixture(scope="module")
def single(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The single-process reference: fkd-predict --workers 1 on the folder."""
    out = tmp_path_factory.mktemp("single")
    result = run(predict_app, photos, "--workers", "1", "--export", out / "faces.jsonl", "-o", out / "annotated")
    assert result.exit_code == 3, result.output  # done; the broken photo skipped
    return {"folder": out, "lines": (out / "faces.jsonl").read_text().splitlines()}


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'fkd[ray]'")
    # ray.init installs its own SIGTERM and SIGINT handlers in this process and shutdown leaves
    # them: put pytest's back, or later tests of fkd's signal handling see Ray's
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


@pytest.fixture(scope="module")
def clips(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 30-frame clips, one with a name that is not UTF-8."""
    folder = tmp_path_factory.mktemp("clips")
    for source, name in (("talking_head_512.mp4", b"talking.mp4"), ("webcam_320x240.mp4", ODD + b".mp4")):
        cap = cv2.VideoCapture(str(shared / "video" / source))
        frames = [cap.read()[1] for _ in range(30)]
        cap.release()
        tmp = folder / "tmp.mp4"
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, frames[0].shape[1::-1])
        for frame in frames:
            writer.write(frame)
        writer.release()
        os.rename(tmp, os.fsencode(folder) + b"/" + name)
    return folder


# -- one machine, every core ----------------------------------------------------------------------------
def test_workers_give_the_same_output_in_the_same_order(photos: Path, single: dict, tmp_path: Path) -> None:
    result = run(predict_app, photos, "--workers", "2", "--export", tmp_path / "faces.jsonl", "-o", tmp_path / "ann")
    assert result.exit_code == 3, result.output
    assert (tmp_path / "faces.jsonl").read_text().splitlines() == single["lines"]  # byte for byte, in order
    assert f"{PHOTOS} images" in result.stderr and "1 skipped" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipping {photos / 'broken.jpg'}: not a readable image."]
    copies = sorted(p.relative_to(tmp_path / "ann") for p in (tmp_path / "ann").rglob("*.jpg"))
    assert copies == sorted(p.relative_to(single["folder"] / "annotated")
                            for p in (single["folder"] / "annotated").rglob("*.jpg"))
    assert len(copies) == PHOTOS
    assert all((tmp_path / "ann" / c).read_bytes() == (single["folder"] / "annotated" / c).read_bytes()
               for c in copies)


def test_videos_in_parallel_give_each_video_its_own_file(clips: Path, tmp_path: Path, ray_cluster) -> None:
    """Each video's file equals a single fkd-live run's export, with processes and with Ray; a rerun skips them."""
    videos = sorted(os.listdir(os.fsencode(clips)))
    for name in videos:
        done = run(live_app, "--video", os.fsencode(clips) + b"/" + name, "--headless", "--export",
                   os.fsencode(tmp_path) + b"/" + name + b".jsonl")
        assert done.exit_code == 0, done.output
    for how in (["--workers", "2"], ["--ray"]):
        out = tmp_path / how[0].strip("-")
        result = run(live_app, "--video", f"{clips}/*.mp4", "--export", out, *how)
        assert result.exit_code == 0, result.output
        assert "2 videos, 60 frames" in result.stderr, result.stderr
        for name in videos:
            mine = (os.fsencode(out) + b"/" + name).rsplit(b".", 1)[0] + b".jsonl"
            with open(mine, "rb") as a, open(os.fsencode(tmp_path) + b"/" + name + b".jsonl", "rb") as b:
                assert a.read() == b.read(), name
    again = run(live_app, "--video", f"{clips}/*.mp4", "--export", tmp_path / "workers")
    assert again.exit_code == 0 and "0 videos" in again.stderr and "2 already done" in again.stderr, again.stderr


# -- Ray ----------------------------------------------------------------------------------------------
def test_ray_gives_the_single_process_records(photos: Path, single: dict, tmp_path: Path, ray_cluster) -> None:
    """The same records as fkd-predict alone (in arrival order), the bad photo as one error record."""
    result = run(predict_app, photos, "--ray", "--export", tmp_path / "shards", "-o", tmp_path / "ann")
    assert result.exit_code == 3, result.output
    assert f"{PHOTOS} images" in result.stderr and "1 skipped" in result.stderr, result.stderr
    records = records_in(tmp_path / "shards")
    errors = [r for r in records if "error" in r]
    assert errors == [{"version": 1, "image": str(photos / "broken.jpg"), "error": "not a readable image"}]
    good = sorted(json.dumps(r, separators=(",", ":")) for r in records if "error" not in r)
    assert good == sorted(single["lines"])
    assert len(list((tmp_path / "ann").rglob("*.jpg"))) == PHOTOS


def test_uris_are_read_by_ray_data(photos: Path, tmp_path: Path, ray_cluster) -> None:
    """A list of file:// URIs goes through Ray Data's reader; a missing object gets its error record."""
    listed = sorted(photos.glob("*.jpg"))[:3]
    uris = [p.absolute().as_uri() for p in listed] + [(photos / "gone.jpg").absolute().as_uri()]
    source = tmp_path / "photos.txt"
    source.write_text("# three photos and one missing\n" + "\n".join(uris) + "\n")
    result = run(predict_app, source, "--ray", "--export", tmp_path / "shards")
    assert result.exit_code == 3, result.output
    records = {r["image"]: r for r in records_in(tmp_path / "shards")}
    assert set(records) == set(uris)
    assert records[uris[-1]]["error"] == "no such file"
    assert all(records[u]["width"] > 0 and records[u]["faces"] for u in uris[:3])


def _kill_when(folder: Path, count: int, pick, sig: int, log: dict) -> threading.Thread:
    """A thread that sends ``sig`` to ``pick()`` once ``folder`` holds ``count`` annotated photos."""
    def watch() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            done = len(list(folder.rglob("*.jpg"))) if folder.is_dir() else 0
            pid = pick() if done >= count else None
            if pid:
                log["done_then"] = done
                os.kill(pid, sig)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _photo_actor() -> int | None:
    """The pid of a Ray Data actor running fkd's PhotoActor (Ray names the process after it)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"PhotoActor" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    return None


def _predict_on_cluster(source: Path, out: Path) -> subprocess.Popen:
    import ray

    args = [str(BIN / "fkd-predict"), str(source), "--ray", "auto", "--export", str(out / "shards"), "-o",
            str(out / "ann")]
    # --ray auto takes the address ray start leaves in /tmp/ray, which ray.init does not write, and failing that
    # any Ray found running on the machine: RAY_ADDRESS names this module's, so a second Ray here cannot stand in
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_a_killed_worker_loses_no_photo_and_doubles_none(photos: Path, tmp_path: Path, ray_cluster) -> None:
    log: dict = {}
    proc = _predict_on_cluster(photos, tmp_path)
    killer = _kill_when(tmp_path / "ann", 5, _photo_actor, signal.SIGKILL, log)
    _, err = proc.communicate(timeout=300)
    killer.join(1)
    assert "done_then" in log and log["done_then"] < PHOTOS, "no worker was killed mid-run"
    assert proc.returncode == 3, err
    images = [r["image"] for r in records_in(tmp_path / "shards")]
    assert sorted(images) == sorted(str(p) for p in photos.iterdir())  # every photo, exactly once


def test_ctrl_c_keeps_what_is_done_and_a_rerun_does_the_rest(photos: Path, tmp_path: Path, ray_cluster) -> None:
    log: dict = {}
    proc = _predict_on_cluster(photos, tmp_path)
    _kill_when(tmp_path / "ann", 8, lambda: proc.pid, signal.SIGINT, log).join(300)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    first = [r["image"] for r in records_in(tmp_path / "shards")]
    assert 0 < len(first) < PHOTOS and len(set(first)) == len(first), err
    (tmp_path / "shards" / ".part-x.jsonl.abcd1234.fkd-tmp").write_text('{"version":1,"image":"half')  # a kill's
    again = _predict_on_cluster(photos, tmp_path)
    _, err = again.communicate(timeout=300)
    broken_left = str(photos / "broken.jpg") not in first  # exit 3 only if this run meets the broken photo
    assert again.returncode == (3 if broken_left else 0) and f"{len(first)} already done" in err, err
    images = [r["image"] for r in records_in(tmp_path / "shards")]
    assert sorted(images) == sorted(str(p) for p in photos.iterdir())  # every photo, exactly once
    assert not list((tmp_path / "shards").glob(".*fkd-tmp")), "the killed run's leftover is still there"


# -- packaging: no Ray on the light paths, one sentence without the extra ---------------------------------
HIDE_RAY = """
import sys
from importlib.metadata import entry_points
sys.modules["ray"] = None  # as if the ray extra were not installed
(script,) = [e for e in entry_points(group="console_scripts") if e.name == sys.argv[1]]
sys.argv = sys.argv[1:]
script.load()()
"""

REPORT_RAY = """
import atexit, sys
from importlib.metadata import entry_points
atexit.register(lambda: print("ray imported:", "ray" in sys.modules, file=sys.stderr))
import fkd
assert "ray" not in sys.modules
if len(sys.argv) > 1:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == sys.argv[1]]
    sys.argv = sys.argv[1:]
    script.load()()
"""


@pytest.mark.parametrize("command", [["fkd-predict", "PHOTOS", "--ray", "--export", "OUT"],
                                     ["fkd-live", "--video", "A.mp4", "B.mp4", "--ray", "--export", "OUT"]])
def test_ray_without_the_extra_names_it(command: list[str], photos: Path, tmp_path: Path) -> None:
    args = [str(photos) if a == "PHOTOS" else str(tmp_path / a) if a in ("OUT", "A.mp4", "B.mp4") else a
            for a in command]
    done = subprocess.run([sys.executable, "-c", HIDE_RAY, *args], capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0] == 'error: --ray needs the ray extra (ray not installed): pip install "fkd[ray]".'


@pytest.mark.parametrize("command", [[], ["fkd-live", "--help"], ["fkd-predict", "--help"],
                                     ["fkd-predict", "PHOTO"], ["fkd-predict", "PHOTOS", "--workers", "2"]])
def test_the_light_paths_import_no_ray(command: list[str], photos: Path) -> None:
    args = [str(photos) if a == "PHOTOS" else str(min(photos.glob("*.jpg"))) if a == "PHOTO" else a for a in command]
    done = subprocess.run([sys.executable, "-c", REPORT_RAY, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 3), done.stderr
    assert done.stderr.strip().splitlines()[-1] == "ray imported: False", done.stderr


# -- the parts without a model --------------------------------------------------------------------------
@pytest.mark.parametrize("given, parsed", [
    (["a", "--ray"], ["a", "--ray", "local"]),
    (["--ray", "photos/", "-o", "x"], ["--ray", "local", "photos/", "-o", "x"]),
    (["a", "--ray", "--workers", "2"], ["a", "--ray", "local", "--workers", "2"]),
    (["a", "--ray", "auto"], ["a", "--ray", "auto"]),
    (["a", "--ray", "ray://head:10001"], ["a", "--ray", "ray://head:10001"]),
    (["a", "--ray", "10.0.0.1:6379"], ["a", "--ray", "10.0.0.1:6379"]),
    (["a", "--ray=auto"], ["a", "--ray=auto"]),
    (["--", "--ray"], ["--", "--ray"]),
])
def test_ray_takes_an_optional_address(given: list[str], parsed: list[str]) -> None:
    assert with_ray_default(given) == parsed


def test_sources_globs_lists_and_names(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jpgs = sorted(photos.glob("*.jpg"))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{jpgs[0]}\n\n# a comment\n{jpgs[1]}\n{jpgs[0]}\n")
    found = expand_photos([str(listing), f"{photos}/*.jpg", str(jpgs[2])])
    assert [p.key for p in found] == [str(jpgs[0]), str(jpgs[1]), *map(str, jpgs[2:])]  # each photo once
    assert found[0].name == plain_name(str(jpgs[0])) and not found[0].name.is_absolute()
    assert found[2].name == Path("set") / jpgs[2].name  # a glob's matches sit under its folder's name
    assert plain_name("s3://bucket/a/../b.jpg") == Path("bucket/a/b.jpg")
    with pytest.raises(Exception, match="only --ray reads URIs"):
        expand_photos(["s3://bucket/photos/"])


def test_a_partial_shard_never_counts(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path / "out", records=2)
    for i in range(3):
        writer.write(json.dumps({"version": 1, "image": f"p{i}.jpg"}))
    assert done_images(tmp_path / "out") == {"p0.jpg", "p1.jpg"}  # the third is in a shard still open
    writer.close()
    assert done_images(tmp_path / "out") == {"p0.jpg", "p1.jpg", "p2.jpg"}
    assert len(list((tmp_path / "out").glob("part-*.jsonl"))) == 2


def test_ray_shuts_down_only_once_quiet() -> None:
    """Issue 35: an ObjectRef let go during ray.shutdown (by a thread Ray Data left running, or by a garbage
    collection) ends the process at once, exit 1 and nothing on stderr. The threads started during the
    session end first, the garbage is collected before, and the collector is off during the shutdown."""
    import gc
    import weakref

    from fkd.realtime.batch.ray_jobs import shutdown_when_quiet

    before = set(threading.enumerate())
    late = threading.Thread(target=time.sleep, args=(0.3,), name="iter_threaded")
    late.start()

    class Cycle:
        me: object

    cycle = Cycle()
    cycle.me = cycle
    freed: list[bool] = []
    weakref.finalize(cycle, freed.append, True)
    del cycle
    seen: dict = {}

    class Ray:
        @staticmethod
        def shutdown() -> None:
            seen.update(thread_ended=not late.is_alive(), collected=freed == [True], collector_on=gc.isenabled())

    shutdown_when_quiet(Ray, before)
    assert seen == {"thread_ended": True, "collected": True, "collector_on": False} and gc.isenabled()
