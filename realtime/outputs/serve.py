"""``fkd-live --serve``: the live view over HTTP while the loop runs.

Routes, and nothing else (no route reads the file system; the page's three files are read
into memory when the server starts):

- ``/``, ``/live.js``, ``/live.css``: the page (realtime/outputs/page/), which draws the keypoints
  itself on a canvas from the records, so a page can restyle them;
- ``/stream.mjpg``: the annotated frames as MJPEG (``multipart/x-mixed-replace``), as the
  window shows them; ``/stream.mjpg?plain=1``: the frames before drawing, which the page uses;
  each part carries the frame's index in an ``X-Frame`` header;
- ``/records``: the records as Server-Sent Events, one ``data:`` line per frame, the same
  JSON as ``--export``;
- ``/status``: JSON with the source (credentials masked), size, loop fps, latency and viewers.

The library is the standard one, ``http.server.ThreadingHTTPServer``: one thread per
connection suits a few viewers of long-lived streams, and the light install (``pip install
fkd``) gains no dependency. An asyncio framework would scale to thousands of viewers, which a
CPU keypoint loop has no use for.

Access: with a token (``ServeAddress.token``) every request must carry it, as ``?token=``, as
``Authorization: Bearer``, or as the cookie the page gets when opened with ``?token=``; a
missing or wrong one gets 403. Without one (loopback only) the Host header must name this
machine's loopback, so a web page the user visits cannot reach the server through DNS
rebinding.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import median
from urllib.parse import parse_qs, urlsplit

import numpy as np

from fkd.model.errors import FkdError
from fkd.realtime.clock import now
from fkd.realtime.outputs.draw import RollingFps
from fkd.realtime.outputs.feeds import JpegFeed, RecordFeed
from fkd.realtime.outputs.records import Face, frame_record, record_json
from fkd.realtime.outputs.serve_address import ServeAddress, listen_error
from fkd.realtime.sources.network import mask_credentials
from fkd.realtime.sources.video import Frame, VideoSource

PAGE = Path(__file__).with_name("page")

#: The page's files: route -> (file in realtime/outputs/page/, content type).
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/live.js": ("live.js", "text/javascript; charset=utf-8"),
    "/live.css": ("live.css", "text/css; charset=utf-8"),
}

#: Seconds a viewer's socket may refuse data (or a client may take to send its request)
#: before the connection is dropped: a stalled viewer costs a thread for this long, no more.
STALL_SECONDS = 10.0

#: Seconds a /records viewer waits after each send, so records that come meanwhile go out in one
#: write: at most 50 writes a second per viewer (and as many wake-ups), whatever the loop's speed.
RECORD_BATCH_SECONDS = 0.02

#: Seconds between comment lines on an idle /records stream, so proxies and browsers keep it open.
KEEPALIVE_SECONDS = 15.0

#: Streams (pictures and records) open at once; more get 503, so connections cannot pile up threads.
MAX_STREAMS = 32

#: The fastest a picture stream is encoded, whatever the source's frame rate says.
MAX_STREAM_FPS = 60.0

BOUNDARY = "fkdframe"

#: Sent with every answer: nothing is cached or framed elsewhere, the URL (and its token) goes to no
#: other site, and the page may load its own files only.
COMMON_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def read_assets() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once: a request can only ever get one of these."""
    assets = {}
    for route, (name, kind) in ASSETS.items():
        try:
            assets[route] = ((PAGE / name).read_bytes(), kind)
        except OSError:
            raise FkdError(f"--serve: the page's file {PAGE / name} is missing from this install; "
                           f"reinstall fkd.") from None
    return assets


class LiveServer(ThreadingHTTPServer):
    """The HTTP server, and what the frame loop hands it each frame (``publish``)."""

    daemon_threads = True  # a viewer's thread never keeps the process alive
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 16

    def __init__(self, address: ServeAddress, source: VideoSource, mirror: bool = False) -> None:
        self.address_family = address.family
        self.assets = read_assets()
        self.address = address
        try:
            super().__init__((address.bind, address.port), Handler)
        except OSError as e:
            raise listen_error(address.text, address.host, address.port, e) from None
        self.port = int(self.server_address[1])
        self.info = {"source": mask_credentials(source.name), "width": source.width, "height": source.height,
                     "mirror": mirror}
        rate = min(max(source.fps, 1.0), MAX_STREAM_FPS)
        self.annotated = JpegFeed("annotated", rate)
        self.plain = JpegFeed("plain", rate)
        self.records = RecordFeed()
        self.fps = RollingFps(30)
        self.latencies: deque[float] = deque(maxlen=30)
        self.frames = 0
        self.last_frame = -1
        self.loop_fps = 0.0
        self.streams = 0
        self.stalled = 0
        self.refused = 0  # 403s
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._plain_image: np.ndarray | None = None
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="fkd-serve", daemon=True)
        self._thread.start()
        print(f"fkd-live: serving {self.url}{self._where()}", file=sys.stderr, flush=True)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the address (slow, or hung, on some networks)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.address.host, int(self.server_address[1])

    @property
    def url(self) -> str:
        """The page's URL with its token; for a wildcard bind, as this machine reaches it."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.address.bind, self.address.host)
        host = f"[{host}]" if ":" in host else host
        query = f"?token={self.address.token}" if self.address.token else ""
        return f"http://{host}:{self.port}/{query}"

    def _where(self) -> str:
        if self.address.bind in ("0.0.0.0", "::"):
            return (" (listening on every address of this machine: from another computer, use this machine's "
                    "address; the token is required)")
        return " (the token is required)" if self.address.token else " (this machine only)"

    # -- the frame loop's side: never waits on a viewer ----------------------------------------------
    def keep_plain(self, frame: Frame, mirrored_view: bool) -> None:
        """Before drawing: keep the undrawn frame for the page's stream (drawing happens in place)."""
        self.info["mirror"] = mirrored_view  # the window's m key turns it; the page follows
        if self.plain.wants():
            self._plain_image = frame.image if mirrored_view else frame.image.copy()

    def publish(self, frame: Frame, faces: list[Face], view: np.ndarray, arrived: float) -> None:
        """After drawing: the record to /records, the frames to the picture feeds, the figures to /status."""
        if self.records.watched:
            self.records.publish(record_json(frame_record(frame.index, frame.time, faces)))
        self.annotated.offer(frame.index, view)
        if self._plain_image is not None:
            self.plain.offer(frame.index, self._plain_image)
            self._plain_image = None
        self.loop_fps = self.fps.tick()
        self.latencies.append(now() - arrived)
        self.frames += 1
        self.last_frame = frame.index

    def status(self) -> dict:
        latencies = list(self.latencies)
        return {**self.info, "frames": self.frames, "frame": self.last_frame, "fps": round(self.loop_fps, 2),
                "latency_ms": round(1e3 * median(latencies), 2) if latencies else None,
                "viewers": {"stream": self.annotated.viewers, "plain": self.plain.viewers,
                            "records": self.records.viewers}}

    # -- connections ---------------------------------------------------------------------------------
    def open_stream(self, connection: socket.socket) -> bool:
        with self._lock:
            if self.streams >= MAX_STREAMS:
                return False
            self.streams += 1
            self._connections.add(connection)
            return True

    def close_stream(self, connection: socket.socket) -> None:
        with self._lock:
            self.streams -= 1
            self._connections.discard(connection)

    def close(self) -> None:
        """End every stream (viewers see the end at once), then stop listening."""
        for feed in (self.annotated, self.plain, self.records):
            feed.close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self.shutdown()
        self.server_close()

    def notes(self) -> list[str]:
        viewers = self.annotated.viewers_in_all + self.plain.viewers_in_all
        line = (f"--serve {mask_credentials(self.url.split('?')[0])}: {viewers} picture stream"
                f"{'s' if viewers != 1 else ''} and {self.records.viewers_in_all} record stream"
                f"{'s' if self.records.viewers_in_all != 1 else ''} served, "
                f"{self.annotated.encoded + self.plain.encoded} frames encoded")
        if self.stalled:
            line += f", {self.stalled} stalled viewer{'s' if self.stalled != 1 else ''} dropped"
        if dropped := self.records.dropped_in_all():
            line += f", {dropped} record{'s' if dropped != 1 else ''} dropped for viewers that fell behind"
        if self.refused:
            line += f", {self.refused} request{'s' if self.refused != 1 else ''} refused (403)"
        return [line + "."]


def _token_of(handler: BaseHTTPRequestHandler, query: dict[str, list[str]], port: int) -> str | None:
    if "token" in query:
        return query["token"][-1]
    auth = handler.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    cookie = SimpleCookie()
    with contextlib.suppress(Exception):
        cookie.load(handler.headers.get("Cookie", ""))
    morsel = cookie.get(cookie_name(port))
    return morsel.value if morsel else None


def cookie_name(port: int) -> str:
    """Cookies ignore ports, so each server's cookie is named by its own."""
    return f"fkd-live-{port}"


def loopback_hosts(port: int) -> set[str]:
    """The Host headers a loopback server without a token answers (a browser leaves out port 80)."""
    names = ("127.0.0.1", "localhost", "[::1]")
    return {f"{name}:{port}" for name in names} | (set(names) if port == 80 else set())


class Handler(BaseHTTPRequestHandler):
    """One request: the token (or the Host header), then one of the fixed routes."""

    server: LiveServer
    timeout = STALL_SECONDS  # socket timeout: a request that is not sent, or a viewer that stops reading
    server_version = "fkd-live"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        """No request log: fkd-live's stderr is for its own lines."""

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # a viewer that hangs up mid-answer is no error of fkd's
            super().handle()

    def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**COMMON_HEADERS, "Content-Type": kind, "Content-Length": str(len(body)),
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, why: str) -> None:
        self._send(status, f"{status} {HTTPStatus(status).phrase}: {why}\n".encode(), "text/plain; charset=utf-8")

    def _allowed(self, query: dict[str, list[str]]) -> bool:
        token = self.server.address.token
        if token is None:
            if self.headers.get("Host", "") not in loopback_hosts(self.server.port):
                self.server.refused += 1
                self._refuse(403, "this server answers only to 127.0.0.1, localhost or [::1] by that port.")
                return False
            return True
        given = _token_of(self, query, self.server.port)
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            self.server.refused += 1
            self._refuse(403, "a valid token is required (?token=...).")
            return False
        return True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._allowed(query):
            return
        cors = {"Access-Control-Allow-Origin": "*"} if self.server.address.token else {
            "Cross-Origin-Resource-Policy": "same-origin"}
        if url.path in self.server.assets:
            body, kind = self.server.assets[url.path]
            headers = {"Content-Security-Policy": PAGE_POLICY, "Cross-Origin-Resource-Policy": "same-origin"}
            token = self.server.address.token
            if url.path == "/" and token and "token" in query:  # the page's own requests then carry it
                headers["Set-Cookie"] = f"{cookie_name(self.server.port)}={token}; Path=/; HttpOnly; SameSite=Strict"
            self._send(200, body, kind, headers)
        elif url.path == "/status":
            self._send(200, json.dumps(self.server.status()).encode(), "application/json", cors)
        elif url.path == "/stream.mjpg":
            plain = query.get("plain", ["0"])[-1] not in ("0", "", "false")
            self._stream(self.server.plain if plain else self.server.annotated, cors)
        elif url.path == "/records":
            self._records(cors)
        else:
            self._refuse(404, "not one of /, /stream.mjpg, /records, /status.")

    def _open(self, kind: str, headers: dict[str, str]) -> bool:
        if not self.server.open_stream(self.connection):
            self._refuse(503, f"{MAX_STREAMS} streams are open already; try again later.")
            return False
        self.close_connection = True
        self.send_response(200)
        for name, value in {**COMMON_HEADERS, "Content-Type": kind, "Connection": "close", **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        return True

    def _stream(self, feed: JpegFeed, headers: dict[str, str]) -> None:
        if not feed.join():
            self._refuse(503, "the loop has ended.")
            return
        try:
            if not self._open(f"multipart/x-mixed-replace; boundary={BOUNDARY}", headers):
                return
            sequence = 0
            try:
                while not feed.closed:
                    jpeg = feed.newer_than(sequence, KEEPALIVE_SECONDS)
                    if jpeg is None:
                        continue
                    sequence = jpeg.sequence
                    self.wfile.write(b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\nX-Frame: %d\r\n\r\n"
                                     % (BOUNDARY.encode(), len(jpeg.data), jpeg.frame) + jpeg.data + b"\r\n")
            finally:
                self.server.close_stream(self.connection)
        except TimeoutError:
            self.server.stalled += 1
        except OSError:  # the viewer went away
            pass
        finally:
            feed.leave()

    def _records(self, headers: dict[str, str]) -> None:
        feed = self.server.records
        sub = feed.subscribe()
        if sub is None:
            self._refuse(503, "the loop has ended.")
            return
        try:
            if not self._open("text/event-stream; charset=utf-8", headers):
                return
            try:
                self.wfile.write(b"retry: 2000\n\n")
                while (lines := feed.take(sub, KEEPALIVE_SECONDS)) is not None:
                    text = "".join(f"data: {line}\n\n" for line in lines) if lines else ": waiting for frames\n\n"
                    self.wfile.write(text.encode())
                    time.sleep(RECORD_BATCH_SECONDS)
            finally:
                self.server.close_stream(self.connection)
        except TimeoutError:
            self.server.stalled += 1
        except OSError:
            pass
        finally:
            feed.unsubscribe(sub)
