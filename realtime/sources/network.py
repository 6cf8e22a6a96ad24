"""Network streams (rtsp, http(s) MJPEG or video, udp) and the masking of their credentials.

Every failure to open becomes one sentence naming the URL with its login hidden.
"""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

import cv2

from fkd.model.errors import FkdError, UsageError
from fkd.realtime.defaults import RECONNECTS, STREAM_TIMEOUT
from fkd.realtime.sources.live import LiveSource, open_with_deadline

#: Network streams FFmpeg (inside the pip OpenCV) opens; each is a live source like a camera.
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https", "udp")

_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")
_SECRET_QUERY = re.compile(r"(?i)(?<=[?&;])((?:user(?:name)?|pass(?:word)?|pwd|token|key|auth|secret)=)[^&;#\s]*")
_DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}


def is_url(text: str) -> bool:
    """True for anything of the form scheme://..., supported or not (so both get a clear answer)."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) is not None


def mask_credentials(text: str) -> str:
    """``text`` with URL credentials hidden: user:pass@ becomes ***@, and password=... becomes password=***.

    Everything fkd prints or writes about a stream goes through this, so a camera's login never
    reaches a terminal, a log or a file.
    """
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", text))



def _reach(url: str, seconds: float) -> str:
    """Why a TCP stream's server cannot be reached ("" if it accepts a connection, or for udp)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return ""
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return "its port is not a number from 0 to 65535"
    host = parts.hostname
    if not host:
        return "it names no host"
    try:
        with socket.create_connection((host, port), timeout=seconds):
            return ""
    except socket.gaierror:
        return f"the host name {host} could not be resolved"
    except ConnectionRefusedError:
        return f"nothing accepts connections on {host} port {port} (connection refused)"
    except TimeoutError:
        return f"{host} port {port} did not answer within {seconds:g} s"
    except OSError as e:
        return f"{host} port {port} could not be reached ({e.strerror or e})"


def _open_url(url: str, seconds: float) -> tuple[cv2.VideoCapture | None, str]:
    """(an opened capture, "") or (None, what failed), within about ``seconds``."""
    start = time.monotonic()
    why = _reach(url, seconds)
    if why:
        return None, why
    left = max(seconds - (time.monotonic() - start), 0.5)
    ms = int(left * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(seconds * 1000)]
    cap = open_with_deadline(lambda: cv2.VideoCapture(url, cv2.CAP_FFMPEG, params), left + 1.0)
    if cap is not None:
        return cap, ""
    if time.monotonic() - start >= 0.9 * seconds:
        return None, f"no video came within {seconds:g} s"
    if urlsplit(url).scheme.lower() == "udp":
        return None, "no video stream could be read from it"
    return None, "the server answered but no video stream could be opened there (a wrong path, not a video, " \
                 "or a login needed)"



def open_stream(url: str, timeout: float = STREAM_TIMEOUT, reconnects: int = RECONNECTS) -> LiveSource:
    """A network stream (rtsp, rtsps, http(s) MJPEG or video, udp) as a live source.

    Failing to open takes at most about ``timeout`` seconds and ends in one sentence that names
    the URL with its credentials masked.
    """
    shown = mask_credentials(url)
    scheme = url.split("://", 1)[0].lower()
    if scheme not in STREAM_SCHEMES:
        raise UsageError(f"--video {shown}: {scheme}:// streams are not supported; use "
                         f"{', '.join(STREAM_SCHEMES)}, or give a file path.")
    cap, why = _open_url(url, timeout)
    if cap is None:
        raise FkdError(f"--video {shown} could not be opened: {why}.")
    try:
        return LiveSource(cap, f"stream {shown}", reopen=lambda: _open_url(url, timeout)[0], reconnects=reconnects)
    except FkdError:
        raise FkdError(f"--video {shown} opened but sent no frame within {timeout:g} s.") from None

