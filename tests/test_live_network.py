"""fkd-live with network sources and sinks, over real loopback sockets and a real shared clip.

An MJPEG server in the test (multipart/x-mixed-replace over http.server, as phone camera apps
and many IP cameras serve it) streams JPEG frames of a shared clip at a fixed pace; fkd-live
runs as a separate process, as a user runs it. Nothing of the network is mocked.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

from fkd.model.errors import FkdError
from fkd.realtime.outputs.records import RECORD_VERSION
from fkd.realtime.outputs.sinks import MAX_DATAGRAM, UdpSink
from fkd.realtime.sources.network import mask_credentials, open_stream

CLIP = "webcam_320x240.mp4"  # one face on nearly every frame
FRAMES = 120  # frames the server sends in all
PACE = 15.0  # frames per second the server sends: a slow IP camera, kept well below fkd's speed here
SECRET = "hunter2"  # a password that must never reach any output


class MjpegServer:
    """Serves the clip's frames as MJPEG on 127.0.0.1, ``PACE`` frames a second.

    ``plan`` gives the frames each successive connection gets before the server drops it (None:
    to the end of the clip); the clip goes on where the last connection stopped. Once the plan
    is used up, every request gets 404, like a camera whose stream is gone. With ``stall``, a
    connection whose budget is spent is held open that many seconds without a byte (a hung camera).
    """

    def __init__(self, clip: Path, plan: list[int | None], frames: int = FRAMES, pace: float = PACE,
                 stall: float = 0.0) -> None:
        cap = cv2.VideoCapture(str(clip))
        self.jpegs: list[bytes] = []
        while len(self.jpegs) < frames:
            ok, image = cap.read()
            if not ok:
                break
            self.jpegs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        cap.release()
        self.plan, self.pace, self.stall, self.served, self.connections = list(plan), pace, stall, 0, 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://admin:{SECRET}@127.0.0.1:{self.httpd.server_address[1]}/video.mjpg?password={SECRET}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # no request log on the test's stderr
                pass

            def do_GET(self) -> None:
                if not server.plan or server.served >= len(server.jpegs):
                    self.send_error(404)
                    return
                budget = server.plan.pop(0)
                server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=fkdframe")
                self.end_headers()
                start, sent = time.monotonic(), 0
                while server.served < len(server.jpegs) and (budget is None or sent < budget):
                    delay = start + sent / server.pace - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    jpeg = server.jpegs[server.served]
                    try:
                        self.wfile.write(b"--fkdframe\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    server.served += 1
                    sent += 1
                time.sleep(server.stall)
                self.close_connection = True  # drop the connection here, mid-stream if frames are left

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fkd_live(*args: object, **popen: object) -> subprocess.Popen:
    """fkd-live as its own process (the console script's code, run by this interpreter)."""
    code = "import sys; from fkd.realtime.cli import live_app; sys.argv[0] = 'fkd-live'; live_app()"
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], text=True, **popen)  # type: ignore[call-overload]


def run_fkd_live(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = fkd_live(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_sentence(result: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and result.stdout.strip() == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def clip(shared: Path) -> Path:
    return shared / "video" / CLIP


@pytest.fixture(scope="module")
def broken_stream_run(clip: Path, shipped_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """fkd-live on a stream that drops after 60 frames, comes back for the other 60, then stays down."""
    folder = tmp_path_factory.mktemp("stream")
    server = MjpegServer(clip, plan=[FRAMES // 2, None])
    try:
        result = run_fkd_live("--video", server.url, "--weights", shipped_weights, "--headless",
                              "--export", folder / "k.jsonl", "--output", folder / "annotated.mp4",
                              "--reconnect", 2, "--timeout", 5)
    finally:
        server.close()
    return {"result": result, "served": server.served, "connections": server.connections, "folder": folder}


def test_stream_gives_keypoints_for_nearly_every_frame_served(broken_stream_run: dict) -> None:
    run = broken_stream_run
    assert run["result"].returncode == 0, run["result"].stderr
    records = [json.loads(line) for line in (run["folder"] / "k.jsonl").read_text().splitlines()]
    with_keypoints = [r for r in records if r["faces"] and len(r["faces"][0]["keypoints"]) == 15]
    assert run["served"] == FRAMES
    assert len(with_keypoints) >= 0.9 * run["served"], f"{len(with_keypoints)} of {run['served']} frames"
    assert all(r["version"] == RECORD_VERSION for r in records)
    frames = [r["frame"] for r in records]
    assert frames == sorted(set(frames))  # received order, each once; gaps would be dropped frames
    times = [r["time"] for r in records]
    assert times == sorted(times) and times[-1] >= 0.8 * (FRAMES - 1) / PACE  # wall-clock, not frame/fps


def test_stream_that_drops_is_reopened_then_ends_with_outputs_complete(broken_stream_run: dict) -> None:
    run, folder = broken_stream_run, broken_stream_run["folder"]
    assert run["connections"] == 2  # the drop after 60 frames was followed by a reconnect
    summary = run["result"].stderr
    assert "reopened 1 time" in summary and "did not come back after 2 attempt" in summary, summary
    lines = (folder / "k.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line complete
    assert records[-1]["frame"] >= FRAMES - 5  # frames after the reconnect are there
    cap = cv2.VideoCapture(str(folder / "annotated.mp4"))
    written = 0
    while cap.grab():
        written += 1
    cap.release()
    assert written == len(records)  # the video was finalised: every processed frame decodes
    assert not list(folder.glob(".*"))  # no temporary left behind


def test_credentials_never_appear_in_any_output(broken_stream_run: dict) -> None:
    run = broken_stream_run
    texts = [run["result"].stdout, run["result"].stderr, (run["folder"] / "k.jsonl").read_text()]
    assert "***@127.0.0.1" in run["result"].stderr  # the source is named, its login is not
    for text in texts:
        assert SECRET not in text and "admin" not in text


def test_closed_port_is_one_sentence_within_the_timeout(shipped_weights: Path) -> None:
    url = f"rtsp://admin:{SECRET}@127.0.0.1:{closed_port()}/stream"
    result = run_fkd_live("--video", url, "--weights", shipped_weights, "--headless", "--timeout", 3)
    line = assert_one_sentence(result, 1, "rtsp://***@127.0.0.1", "connection refused")
    assert SECRET not in line
    start = time.monotonic()
    with pytest.raises(FkdError, match="connection refused"):
        open_stream(url, timeout=3)
    assert time.monotonic() - start < 3


def test_silent_server_is_one_sentence_within_the_timeout() -> None:
    """A server that accepts the connection and never answers (a hung camera)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://viewer:{SECRET}@127.0.0.1:{listener.getsockname()[1]}/mjpg"
        start = time.monotonic()
        with pytest.raises(FkdError) as caught:
            open_stream(url, timeout=2)
        elapsed = time.monotonic() - start
    message = str(caught.value)
    assert "within 2 s" in message and "http://***@127.0.0.1" in message and SECRET not in message
    assert elapsed < 2 + 2.5, elapsed  # the timeout, plus the open thread's grace second and some slack


def test_export_to_stdout_reaches_a_pipe_while_the_run_goes_on(clip: Path, shipped_weights: Path,
                                                                 tmp_path: Path) -> None:
    """fkd-live --export - | reader: the reader stamps each line as it arrives.

    The source is a stream paced at PACE frames a second, so the run lasts seconds whatever the
    machine's speed, and lines that arrive well before it ends prove they were not held back."""
    reader_code = ("import sys, time, json\n"
                   "out = open(sys.argv[1], 'w')\n"
                   "for line in sys.stdin:\n"
                   "    out.write(json.dumps([time.monotonic(), line]) + '\\n'); out.flush()\n")
    stamps = tmp_path / "stamps.jsonl"
    server = MjpegServer(clip, plan=[None], frames=45)
    try:
        producer = fkd_live("--video", server.url, "--weights", shipped_weights, "--headless", "--export", "-",
                            "--reconnect", 0, "--timeout", 5, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        reader = subprocess.Popen([sys.executable, "-c", reader_code, str(stamps)], stdin=producer.stdout)
        assert producer.stdout is not None
        producer.stdout.close()  # the reader holds the pipe now
        _, err = producer.communicate(timeout=120)
        ended = time.monotonic()
        reader.wait(timeout=30)
    finally:
        server.close()
    assert producer.returncode == 0 and reader.returncode == 0, err
    arrivals = [json.loads(line) for line in stamps.read_text().splitlines()]
    records = [json.loads(text) for _, text in arrivals]  # every stdout line is one JSON record
    frames = [r["frame"] for r in records]
    assert frames == sorted(set(frames)) and len(frames) >= 0.9 * server.served, (frames, server.served)
    assert all(r["version"] == RECORD_VERSION for r in records)
    first, middle = arrivals[0][0], arrivals[len(arrivals) // 2][0]
    assert first < middle < ended - 0.5, (first, middle, ended)  # lines came while the run was going
    assert "frames read" in err  # the summary went to stderr, not into the pipe


def test_export_udp_sends_one_datagram_per_frame(clip: Path, shipped_weights: Path) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.5)
    datagrams: list[bytes] = []
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():  # bounded: the test sets done once fkd-live has exited
            try:
                datagrams.append(receiver.recv(MAX_DATAGRAM + 1))
            except TimeoutError:
                continue

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        result = run_fkd_live("--video", clip, "--weights", shipped_weights, "--headless",
                              "--export", f"udp://127.0.0.1:{receiver.getsockname()[1]}")
        time.sleep(0.5)  # the last datagrams are in the receive buffer already; let the thread take them
    finally:
        done.set()
        thread.join(timeout=5)
        receiver.close()
    assert result.returncode == 0, result.stderr
    expected = int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT))
    records = [json.loads(d) for d in datagrams]
    assert [r["frame"] for r in records] == list(range(expected))
    assert all(r["version"] == RECORD_VERSION for r in records)
    assert f"{expected} datagrams sent." in result.stderr, result.stderr


def test_udp_record_too_big_for_a_datagram_is_refused_and_counted(capsys: pytest.CaptureFixture) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(1.0)
        sink = UdpSink(f"udp://127.0.0.1:{receiver.getsockname()[1]}")
        sink.write({"version": 1, "frame": 0, "faces": [], "pad": "x" * MAX_DATAGRAM})
        sink.write({"version": 1, "frame": 1, "faces": []})
        sink.close()
        assert json.loads(receiver.recv(MAX_DATAGRAM + 1))["frame"] == 1  # the small one arrives, alone
    assert sink.too_big == 1 and sink.sent == 1
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: ") and "frame 0" in warning and warning.count("\n") == 0
    assert "1 not sent because the record was over 65,507 bytes" in sink.notes()[0]


def test_list_cameras_answers_quickly_and_exits_0() -> None:
    result = run_fkd_live("--list-cameras", timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    if any(Path("/dev").glob("video*")) or sys.platform != "linux":
        assert all(line.startswith(("camera ", "no camera found")) for line in lines)
    else:
        assert len(lines) == 1 and lines[0].startswith("no camera found"), lines


def test_camera_path_that_is_not_there_is_one_sentence() -> None:
    result = run_fkd_live("--camera", "/dev/video-fkd-missing", "--headless", timeout=60)
    assert_one_sentence(result, 1, "--camera /dev/video-fkd-missing", "no such device")


def test_unsupported_scheme_is_one_sentence() -> None:
    result = run_fkd_live("--video", f"rtmp://admin:{SECRET}@127.0.0.1/live", "--headless", timeout=60)
    line = assert_one_sentence(result, 2, "rtmp://", "not supported")
    assert SECRET not in line


@pytest.mark.parametrize("url, shown", [
    ("rtsp://admin:p@ss@10.0.0.2:554/live", "rtsp://***@10.0.0.2:554/live"),
    ("http://user@cam.local/mjpg?user=bob&password=x1&ch=2", "http://***@cam.local/mjpg?user=***&password=***&ch=2"),
    ("udp://127.0.0.1:5000", "udp://127.0.0.1:5000"),
])
def test_mask_credentials(url: str, shown: str) -> None:
    assert mask_credentials(url) == shown



@pytest.mark.parametrize("target, fragment", [("tcp://127.0.0.1:9000", "the only network export is udp://"),
                                              ("udp://127.0.0.1", "udp://HOST:PORT with a port")])
def test_bad_network_export_is_one_sentence(clip: Path, target: str, fragment: str) -> None:
    result = run_fkd_live("--video", clip, "--headless", "--export", target, timeout=60)
    assert_one_sentence(result, 2, "--export", fragment)


def test_reader_closing_the_pipe_ends_the_run_cleanly(clip: Path, shipped_weights: Path) -> None:
    """fkd-live --export - | head -n 3: fkd-live stops at the closed pipe, exit 0, no traceback."""
    producer = fkd_live("--video", clip, "--weights", shipped_weights, "--headless", "--export", "-",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    three_lines = "import sys\nfor _ in range(3): sys.stdout.write(sys.stdin.readline())"
    head = subprocess.run([sys.executable, "-c", three_lines], stdin=producer.stdout, capture_output=True, text=True,
                          timeout=120)
    assert producer.stdout is not None
    producer.stdout.close()
    _, err = producer.communicate(timeout=120)
    assert producer.returncode == 0 and "Traceback" not in err and "Exception ignored" not in err, err
    assert [json.loads(line)["frame"] for line in head.stdout.splitlines()] == [0, 1, 2]
    assert "the reader of standard output closed it after" in err
    expected = int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT))
    read = int(err.split(" frames read")[0].rsplit(" ", 1)[1])
    assert read < expected  # it stopped early rather than running the clip to its end


def test_frames_that_come_faster_than_fkd_are_dropped_and_counted(clip: Path, shipped_weights: Path,
                                                                   tmp_path: Path) -> None:
    """A stream at 1,000 fps, far above what fkd processes here: the newest frame wins, and the summary
    accounts for every frame the server sent (processed + dropped). (At 200 fps an idle machine
    sometimes kept up with a one-face clip, and nothing was dropped.)"""
    server = MjpegServer(clip, plan=[None], pace=1000.0)
    try:
        result = run_fkd_live("--video", server.url, "--weights", shipped_weights, "--headless",
                              "--export", tmp_path / "k.jsonl", "--reconnect", 0, "--timeout", 5)
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text().splitlines()]
    frames = [r["frame"] for r in records]
    assert frames == sorted(set(frames)) and frames[-1] < server.served
    note = next(line for line in result.stderr.splitlines() if "were dropped" in line)
    dropped, sent = (int(word) for word in note.split()[0:4:3])  # "N of the M frames ..."
    assert sent == server.served == FRAMES and dropped > 0 and dropped + len(records) == sent, note
    assert "with --reconnect 0 the run ended there" in result.stderr


def test_stream_that_hangs_ends_after_the_timeout(clip: Path, shipped_weights: Path, tmp_path: Path) -> None:
    """The server stops sending but keeps the connection open: the read times out, the run ends."""
    server = MjpegServer(clip, plan=[20], frames=40, stall=20.0)
    start = time.monotonic()
    try:
        result = run_fkd_live("--video", server.url, "--weights", shipped_weights, "--headless",
                              "--export", tmp_path / "k.jsonl", "--reconnect", 0, "--timeout", 2)
    finally:
        elapsed = time.monotonic() - start
        server.close()
    assert result.returncode == 0, result.stderr
    assert elapsed < 15, elapsed  # ended by its own 2 s read timeout, not by the server's 20 s stall
    records = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text().splitlines()]
    assert len(records) >= 0.9 * 20 and "broke off 1 time" in result.stderr
    assert "WARN" not in result.stderr and SECRET not in result.stderr  # OpenCV's own timeout line stays off
