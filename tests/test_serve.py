"""fkd-live --serve, seen from a real browser (Chromium driven by Playwright) and over plain HTTP.

fkd-live runs as its own process, as a user runs it, on a live MJPEG source: the shared
talking-head clip, looped and paced by a server in this test as a headless machine's IP camera
would send it, so the loop runs until the test ends it. The camera's URL carries a password,
which must never reach the page. Nothing of the server, the page or the network is mocked.

Chromium comes from Debian's package (``apt-get install chromium``; Playwright's own browser
download is not reachable here). Where it cannot be installed the browser test skips, saying
why, except under CI=true, where that is a failure. With FKD_SCREENSHOT=docs/serve.png the
browser test also writes the docs' picture of the page, docs/serve.png (atomically).
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))  # the fake network camera, shared with bench/serve_load.py
from mjpeg_camera import LoopingCamera

from fkd.model.io.files import write_bytes_atomic

CLIP = "video/talking_head_512.mp4"
PACE = 25.0  # frames a second the camera sends
SECRET = "hunter2"  # the camera's password
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MAGENTA = (255, 0, 255)  # the keypoints' colour once the test restyles them (RGB)
START_LINE = re.compile(r"fkd-live: serving (http://\S+)")


class Served:
    """One fkd-live --serve process and what it printed; its stdout (the --export - lines) is kept by frame."""

    def __init__(self, *args: object) -> None:
        code = "import sys; from fkd.realtime.cli import live_app; sys.argv[0] = 'fkd-live'; live_app()"
        self.proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        self.exported: dict[int, str] = {}
        self._started = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._started.wait(180)
        found = [m for line in self.stderr if (m := START_LINE.search(line))]
        if not found:
            self.stop()
            pytest.fail("fkd-live --serve printed no start line:\n" + "".join(self.stderr))
        self.start_line = next(line for line in self.stderr if START_LINE.search(line))
        url = found[0][1]
        self.token = url.split("?token=")[1] if "?token=" in url else None
        self.base = url.split("?")[0].rstrip("/")
        self.port = int(self.base.rsplit(":", 1)[1])

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            if START_LINE.search(line):
                self._started.set()
        self._started.set()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            frame = json.loads(line)["frame"]
            self.exported[frame] = line.rstrip("\n")
            self.exported.pop(frame - 5000, None)

    def stop(self) -> str:
        """SIGINT, as Ctrl-C; the whole of stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.2)  # the reader threads take the last lines
        return "".join(self.stderr)


def get(served: Served, path: str, token: str | None = None, headers: dict[str, str] | None = None,
        host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """One plain request with the path sent exactly as given (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    if token is not None:
        path += ("&" if "?" in path else "?") + f"token={token}"
    connection.putrequest("GET", path, skip_host=host is not None, skip_accept_encoding=True)
    if host is not None:
        connection.putheader("Host", host)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    streaming = response.getheader("Content-Type", "").startswith(("multipart/", "text/event-stream"))
    body = response.read1(4096) if streaming else response.read()
    connection.close()
    return response.status, dict(response.getheaders()), body


def sse_lines(served: Served, count: int) -> list[str]:
    """The first ``count`` records of /records, as the text of their data: lines."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
    connection.request("GET", f"/records?token={served.token}")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/event-stream")
    lines: list[str] = []
    while len(lines) < count:
        line = response.fp.readline().decode()
        assert line, "the record stream ended"
        if line.startswith("data: "):
            lines.append(line[6:].rstrip("\n"))
    connection.close()
    return lines


@pytest.fixture(scope="module")
def camera(shared: Path) -> Iterator[LoopingCamera]:
    server = LoopingCamera(shared / CLIP, PACE, pages={"/app.html": b"<!doctype html><title>another app</title>"})
    # the camera's URL carries a password twice, which fkd-live must never show a viewer
    server.url = f"http://admin:{SECRET}@127.0.0.1:{server.port}/cam.mjpg?password={SECRET}"
    yield server
    server.close()


@pytest.fixture(scope="module")
def served(camera: LoopingCamera, shipped_weights: Path) -> Iterator[Served]:
    """fkd-live on the camera, serving on every address (so with a token, made and printed at start),
    exporting to standard output at the same time."""
    run = Served("--video", camera.url, "--weights", shipped_weights, "--headless",
                 "--serve", "0.0.0.0:0", "--export", "-")
    yield run
    stderr = run.stop()  # Ctrl-C ends it as a user would: exit 0, the summary says what was served
    assert run.proc.returncode == 0 and "Traceback" not in stderr, stderr
    served_line = r"--serve http://127\.0\.0\.1:\d+/: \d+ picture streams and \d+ record streams served"
    assert re.search(served_line, stderr), stderr


# -- over plain HTTP ---------------------------------------------------------------------------------
def test_a_token_is_made_and_printed_when_serving_beyond_loopback(served: Served) -> None:
    assert served.token is not None and re.fullmatch(r"[A-Za-z0-9_-]{24}", served.token), served.start_line
    assert "every address of this machine" in served.start_line and "token is required" in served.start_line
    assert get(served, "/status", served.token)[0] == 200


@pytest.mark.parametrize("path", ["/", "/live.js", "/status", "/records", "/stream.mjpg", "/stream.mjpg?plain=1",
                                  "/no-such-page"])
def test_a_missing_or_wrong_token_gets_403(served: Served, path: str) -> None:
    assert get(served, path)[0] == 403
    assert get(served, path, "wrong-token-123")[0] == 403
    assert get(served, path, served.token[:-1])[0] == 403  # type: ignore[index]
    assert get(served, path, headers={"Authorization": "Bearer wrong-token-123"})[0] == 403
    assert get(served, path, headers={"Cookie": f"fkd-live-{served.port}=wrong-token-123"})[0] == 403
    assert get(served, path, headers={"Authorization": f"Bearer {served.token}"})[0] == (
        404 if path == "/no-such-page" else 200)


@pytest.mark.parametrize("path", ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                                  "/..%2f..%2fserve.py", "/page/index.html", "/index.html", "/serve.py",
                                  "/live.js/../serve.py", "//etc/passwd", "/live.css%00.js", "/realtime/page/live.js",
                                  "http://127.0.0.1/../serve.py"])
def test_no_path_reaches_the_file_system(served: Served, path: str) -> None:
    status, _, body = get(served, path, served.token)
    assert status == 404 and b"root:" not in body and b"import" not in body, (path, status, body[:200])


def test_the_page_and_its_files_are_served_with_a_strict_policy(served: Served) -> None:
    status, headers, body = get(served, "/", served.token)
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"live.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["Referrer-Policy"] == "no-referrer"
    assert f"fkd-live-{served.port}={served.token}" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
    for path, kind in (("/live.js", "text/javascript"), ("/live.css", "text/css")):
        status, headers, body = get(served, path, served.token)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body


def test_credentials_in_the_camera_url_never_reach_a_viewer(served: Served) -> None:
    status = json.loads(get(served, "/status", served.token)[2])
    assert status["source"].startswith("stream http://***@127.0.0.1:") and status["width"] == 512
    for path in ("/", "/live.js", "/live.css", "/status"):
        body = get(served, path, served.token)[2].decode()
        assert SECRET not in body and "admin" not in body


def test_records_are_the_export_lines(served: Served) -> None:
    """/records sends, per frame, exactly the line --export writes for it."""
    lines = sse_lines(served, 40)
    frames = [json.loads(line)["frame"] for line in lines]
    assert frames == sorted(set(frames))
    time.sleep(0.5)  # the exported line of the last frame is read from the pipe by another thread
    matched = [line == served.exported.get(frame) for line, frame in zip(lines, frames)]
    assert all(matched), [f for f, ok in zip(frames, matched) if not ok]
    assert sum(bool(json.loads(line)["faces"]) for line in lines) >= 30


def test_the_annotated_stream_is_mjpeg_with_frame_numbers(served: Served) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
    connection.request("GET", f"/stream.mjpg?token={served.token}")
    response = connection.getresponse()
    assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=fkdframe"
    frames = []
    for _ in range(3):
        assert response.fp.readline() == b"--fkdframe\r\n"
        head = dict(line.decode().strip().split(": ", 1) for line in iter(response.fp.readline, b"\r\n"))
        jpeg = response.fp.read(int(head["Content-Length"]))
        assert response.fp.read(2) == b"\r\n"
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and head["Content-Type"] == "image/jpeg" and image.shape == (512, 512, 3)
        frames.append(int(head["X-Frame"]))
    connection.close()
    assert frames == sorted(set(frames))


def test_loopback_without_a_token_answers_only_to_loopback_names(camera: LoopingCamera, shipped_weights: Path) -> None:
    """A bare port binds 127.0.0.1 with no token; a Host header from elsewhere (DNS rebinding) gets 403."""
    run = Served("--video", camera.url, "--weights", shipped_weights, "--headless",
                 "--serve", "0")
    try:
        assert run.token is None and run.base.startswith("http://127.0.0.1:") and "this machine only" in run.start_line
        assert get(run, "/status")[0] == 200
        assert get(run, "/status", host=f"localhost:{run.port}")[0] == 200
        assert get(run, "/status", host=f"attacker.example:{run.port}")[0] == 403
        assert get(run, "/", host="attacker.example")[0] == 403
    finally:
        stderr = run.stop()
    assert "Traceback" not in stderr and "--serve http://127.0.0.1:" in stderr, stderr
    assert "2 requests refused (403)" in stderr, stderr


# -- in the browser ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Chromium from Debian's package, driven by Playwright; a skip that says why where it cannot run
    (a failure under CI=true, where .ci/run installs both)."""
    why = None
    if not CHROMIUM.exists():
        why = f"needs Chromium at {CHROMIUM} (apt-get install chromium), which is missing"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            why = "needs Playwright (pip install playwright, in the dev extra), which is not installed"
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; CI must run the browser test")
        pytest.skip(why)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def picture(page, selector: str = "#view") -> np.ndarray:
    """An element's pixels as the screen shows them (RGB)."""
    image = cv2.imdecode(np.frombuffer(page.locator(selector).screenshot(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def wait_for_frame_after(page, frame: int) -> dict:
    # a function, not an expression: the page's policy forbids eval, which an expression would need
    page.wait_for_function("(frame) => window.fkdLive?.drawn?.frame > frame && window.fkdLive.drawn.record"
                           "&& window.fkdLive.drawn.record.faces.length > 0", arg=frame, timeout=60_000)
    return page.evaluate("window.fkdLive.drawn")


def test_the_page_in_a_browser(chromium, served: Served) -> None:
    context = chromium.new_context(viewport={"width": 900, "height": 660}, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # a wrong token is refused, the right one opens the page
    assert page.goto(f"{served.base}/?token=not-the-token").status == 403
    assert page.goto(f"{served.base}/?token={served.token}").status == 200

    # the picture comes, with its record: keypoints drawn, faces listed, the server's figures shown
    first = wait_for_frame_after(page, -1)
    page.wait_for_function("() => document.getElementById('fps').textContent !== '–'", timeout=30_000)
    assert SECRET not in page.content() and "***@127.0.0.1" in page.inner_text("#source")
    assert float(page.inner_text("#fps")) > 0 and float(page.inner_text("#latency")) > 0
    assert page.evaluate("window.fkdLive.received") > 0
    if os.environ.get("FKD_SCREENSHOT"):  # the docs' picture (docs/serving.md): the page as shipped
        page.wait_for_timeout(1500)  # a second of figures, so the rolling fps is settled
        write_bytes_atomic(Path(os.environ["FKD_SCREENSHOT"]), page.screenshot())

    # the picture changes
    before = picture(page)
    later = wait_for_frame_after(page, first["frame"] + 10)
    after = picture(page)
    assert later["frame"] > first["frame"]
    assert np.abs(before.astype(int) - after.astype(int)).mean() > 1.0, "the picture did not change"

    # several viewers at once, one of them stalled: the others keep getting new frames
    others = [context.new_page() for _ in range(2)]
    for other in others:
        other.goto(f"{served.base}/?token={served.token}")
    stalled = socket.create_connection(("127.0.0.1", served.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(f"GET /stream.mjpg?token={served.token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        for other in others:
            wait_for_frame_after(other, -1)
        now = page.evaluate("window.fkdLive.drawn.frame")
        wait_for_frame_after(page, now + 2 * PACE)  # two seconds of frames while one viewer reads nothing
        status = json.loads(get(served, "/status", served.token)[2])
        assert status["viewers"]["plain"] >= 3 and status["viewers"]["records"] >= 3, status
    finally:
        stalled.close()
        for other in others:
            other.close()

    # restyled from outside the script: the points are drawn where the records put them, and only there
    page.evaluate("() => { const view = document.getElementById('view').style;"  # CSSOM: the policy allows it
                  "view.setProperty('--fkd-point', 'rgb(255, 0, 255)'); view.setProperty('--fkd-point-radius', '3'); }")
    now = page.evaluate("window.fkdLive.drawn.frame")
    wait_for_frame_after(page, now)
    page.click("#pause")
    drawn = page.evaluate("window.fkdLive.drawn")
    shot = picture(page)
    assert shot.shape[:2] == (512, 512)
    points = np.array([xy for face in drawn["record"]["faces"] for xy in face["keypoints"].values()])
    assert len(points) == 15 * len(drawn["record"]["faces"]) and len(points) >= 15
    ys, xs = np.nonzero((np.abs(shot.astype(int) - MAGENTA) <= 30).all(axis=2))
    for x, y in np.rint(points).astype(int):
        assert (np.abs(shot[y, x].astype(int) - MAGENTA) <= 30).all(), f"no point drawn at ({x}, {y}): {shot[y, x]}"
    distance = np.hypot(xs[:, None] - points[None, :, 0], ys[:, None] - points[None, :, 1]).min(axis=1)
    assert distance.max() <= 4.5, "magenta drawn away from every keypoint"
    rows = page.locator("#faces tbody tr").all_inner_texts()
    assert [row.split()[0] for row in rows] == [str(f["id"]) for f in drawn["record"]["faces"]]
    for row, face in zip(rows, drawn["record"]["faces"]):  # the angles and expressions of the drawn record
        shown = row.split()
        assert shown[2:5] == [f"{face['pose'][k]:.1f}" for k in ("yaw", "pitch", "roll")], (shown, face["pose"])
        assert shown[5:8] == [f"{face['expression'][k]:.2f}" for k in ("mouth_open", "smile", "brow_raise")]
    assert page.inner_text("#frame") == str(drawn["frame"])
    assert not errors, errors
    context.close()


def docs_example(language: str, served: Served) -> str:
    """The docs' lines for reading /records in ``language`` (docs/serving.md), pointed at this server."""
    text = (REPO / "docs" / "serving.md").read_text(encoding="utf-8")
    block = re.search(r"```" + language + r"\n(.*?)```", text.split("Reading `/records`", 1)[-1], re.S)
    assert block, f"docs/serving.md has no {language} example for reading /records"
    assert len(block[1].strip().splitlines()) <= 3
    return block[1].replace("127.0.0.1:8080", f"127.0.0.1:{served.port}").replace("TOKEN", served.token or "")


def test_the_docs_python_example_reads_records(served: Served) -> None:
    """Run as written; it reads forever, so its first printed line is taken and it is stopped."""
    proc = subprocess.Popen([sys.executable, "-c", docs_example("python", served)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert line.startswith("[") and "nose_tip" in line, (line, stderr)


def test_the_docs_javascript_example_reads_records_from_another_origin(chromium, camera: LoopingCamera,
                                                                          served: Served) -> None:
    """Run in a page of another origin (another port): with a token, /records allows any origin."""
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{camera.port}/app.html")  # a web application of another origin
    code = docs_example("js", served).replace("console.log(", "window.got.push(")
    page.evaluate("window.got = []")
    page.evaluate("() => { " + code + " }")  # as statements (a bare string that ends in a function is called)
    page.wait_for_function("() => window.got.length >= 3", timeout=60_000)
    faces = page.evaluate("window.got[2]")
    assert isinstance(faces, list) and (not faces or len(faces[0]["keypoints"]) == 15)
    context.close()
