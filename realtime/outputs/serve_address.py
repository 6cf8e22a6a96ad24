"""Where ``fkd-live --serve`` listens and who may look: ``[HOST:]PORT`` and the token.

Safe by default: a bare PORT binds 127.0.0.1, which only this machine can reach. Naming any
address that is not loopback (0.0.0.0, a LAN address, a host name) opens the picture of a camera
to a network, so a token is then required: ``--token`` gives it (or FKD_LIVE_TOKEN, which stays
out of ``ps``), otherwise a random one is made and printed at start. A ``--token`` given for a
loopback address is required there too: asking for one means wanting one.

Everything here runs before the model loads, so a bad value or a port in use is refused in one
sentence at once, not after the model and the camera have been opened.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import secrets
import socket
from dataclasses import dataclass

from fkd.model.errors import FkdError, UsageError

#: The address a bare PORT binds: reachable from this machine only.
DEFAULT_HOST = "127.0.0.1"

#: Tokens travel in URLs and cookies, so they keep to characters neither has to escape.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{8,256}")

_SERVE = re.compile(r"(?:(?P<host>\[[^\]\s]*\]|[^:\[\]\s/]+):)?(?P<port>\d{1,5})")


@dataclass(frozen=True)
class ServeAddress:
    """A checked ``--serve`` value: the host as given, the address to bind, the port and the token.

    ``token`` is None only for a loopback address without ``--token``: then nothing but this
    machine can connect, and the server checks the Host header instead (DNS rebinding).
    """

    text: str  # the value as the user gave it, for messages
    host: str  # as given (brackets removed), or DEFAULT_HOST
    family: int  # socket.AF_INET or AF_INET6
    bind: str  # the numeric address bound
    port: int  # 0: any free port (the start line says which)
    token: str | None
    token_made: bool = False  # made here at random (so the start line must show it)

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.bind.split("%", 1)[0]).is_loopback


def check_token(token: str) -> str:
    if not TOKEN_PATTERN.fullmatch(token):
        raise UsageError("--token must be 8 to 256 letters, digits or the characters - _ . ~ (it travels in URLs).")
    return token


def parse_serve(text: str) -> tuple[str, int]:
    """(host, port) of ``[HOST:]PORT`` (IPv6 hosts in brackets), or one sentence saying what is wrong."""
    match = _SERVE.fullmatch(text.strip())
    port = int(match["port"]) if match else -1
    if not match or not 0 <= port <= 65535 or match["host"] in ("[]",):
        raise UsageError(f"--serve {text}: give [HOST:]PORT with a port from 0 to 65535 (0: any free port), "
                         f"such as 8080, 0.0.0.0:8080 or [::]:8080.")
    host = match["host"] or DEFAULT_HOST
    return host.strip("[]"), port


def resolve(text: str, host: str, port: int) -> tuple[int, str]:
    """(address family, numeric address) to bind for ``host``; a name that does not resolve is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        raise FkdError(f"--serve {text}: the host name {host} could not be resolved.") from None
    family, _, _, _, address = infos[0]
    return family, str(address[0])


def listen_error(text: str, host: str, port: int, error: OSError) -> FkdError:
    """The one sentence for a socket that cannot listen where --serve says."""
    if error.errno == errno.EADDRINUSE:
        return FkdError(f"--serve {text}: port {port} on {host} is in use by another program; choose another "
                        f"port, or 0 for any free one.")
    if error.errno == errno.EACCES:
        return FkdError(f"--serve {text}: not allowed to listen on port {port} (ports below 1024 need "
                        f"privileges); choose a port from 1024 up.")
    if error.errno == errno.EADDRNOTAVAIL:
        return FkdError(f"--serve {text}: {host} is not an address of this machine.")
    return FkdError(f"--serve {text}: cannot listen on {host} port {port} ({error.strerror or error}).")


def try_listen(address: ServeAddress) -> None:
    """Bind and release at once, so a port in use is refused before the model and the source are opened.

    The server binds again when the loop starts (with the same SO_REUSEADDR, so this probe's
    own closed socket is no obstacle); a program that takes the port in between gets the same
    sentence then.
    """
    probe = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((address.bind, address.port))
        probe.listen(1)
    except OSError as e:
        raise listen_error(address.text, address.host, address.port, e) from None
    finally:
        probe.close()


def serve_address(serve: str | None, token: str | None) -> ServeAddress | None:
    """The checked ``--serve``/``--token`` pair (None without --serve), the port tried once."""
    if serve is None:
        if token is not None:
            raise UsageError("--token goes with --serve; add --serve [HOST:]PORT, or leave --token out.")
        return None
    host, port = parse_serve(serve)
    if token is not None:
        check_token(token)
    family, bind = resolve(serve, host, port)
    made = False
    if token is None and not ipaddress.ip_address(bind.split("%", 1)[0]).is_loopback:
        token, made = secrets.token_urlsafe(18), True
    address = ServeAddress(serve, host, family, bind, port, token, made)
    try_listen(address)
    return address
