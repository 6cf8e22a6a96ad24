"""A shared clip as an endless MJPEG camera on 127.0.0.1: the live network source a headless
machine's camera would be, for feeding ``fkd-live --serve`` in bench/serve_load.py and in
tests/test_serve.py (which puts this folder on sys.path)."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import cv2


class LoopingCamera:
    """The clip's frames as JPEGs, sent to every connection at ``pace`` frames a second, round and
    round, until ``close``. ``pages`` maps other paths to HTML the same server answers with (the
    browser test's web application of another origin); every other path is the stream. ``url``
    is the stream's address, ``port`` the server's."""

    def __init__(self, clip: Path, pace: float = 25.0, pages: dict[str, bytes] | None = None) -> None:
        cap = cv2.VideoCapture(str(clip))
        self.jpegs: list[bytes] = []
        while (image := cap.read()[1]) is not None:
            self.jpegs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        cap.release()
        self.pace = pace
        self.pages = dict(pages or {})
        self.stopping = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/cam.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path in camera.pages:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()
                    self.wfile.write(camera.pages[self.path])
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=cam")
                self.end_headers()
                start, sent = time.monotonic(), 0
                while not camera.stopping.is_set():
                    time.sleep(max(0.0, start + sent / camera.pace - time.monotonic()))
                    jpeg = camera.jpegs[sent % len(camera.jpegs)]
                    try:
                        self.wfile.write(b"--cam\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                    except OSError:
                        return
                    sent += 1

        return Handler

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
