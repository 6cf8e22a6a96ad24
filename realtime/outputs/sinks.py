"""Where fkd-live's per-frame records go: a JSON-lines file, standard output, or UDP datagrams.

``--export`` takes a file path, ``-`` (standard output, for a pipe) or ``udp://HOST:PORT``.
Every sink gets the same record (realtime/outputs/records.py) as one line of compact JSON, so a
consumer can switch between them without changing its parser. A sink never holds up the
frame loop for long: standard output is flushed line by line (a slow reader slows fkd, as
any pipe does), and UDP uses a non-blocking socket whose refusals are counted, not waited on.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

from fkd.model.errors import FkdError, UsageError
from fkd.realtime.outputs.records import JsonLines, record_json

#: The largest UDP payload over IPv4 (65,535 less the IP and UDP headers). A record longer than
#: this is not sent: splitting it would make every consumer reassemble datagrams, and a record
#: that large (hundreds of faces) is not what a live consumer can use anyway.
MAX_DATAGRAM = 65_507


class Sink(Protocol):
    """What the frame loop needs of an export target."""

    @property
    def broken(self) -> bool:
        """True once the reader has gone away for good (a closed pipe): the run should stop."""
        ...

    def write(self, record: dict) -> None: ...

    def close(self) -> None: ...

    def notes(self) -> list[str]: ...


def is_stdout(target: str | Path | None) -> bool:
    return target is not None and str(target) == "-"


def is_network(target: str | Path | None) -> bool:
    """A ``scheme://`` export (only udp:// is accepted; the rest are refused by ``open_sink``)."""
    return target is not None and "://" in str(target)


class FileSink:
    """The JSON-lines file, complete up to its last line, renamed into place on close."""

    broken = False

    def __init__(self, path: Path) -> None:
        self._lines = JsonLines(path)

    def write(self, record: dict) -> None:
        self._lines.write(record)

    def close(self) -> None:
        self._lines.close()

    def notes(self) -> list[str]:
        return []


class StdoutSink:
    """One flushed line per frame on standard output, so a pipe's reader sees each as it is made.

    When the reader closes the pipe (``| head``), the sink stops writing, points the stdout
    descriptor at /dev/null (so Python's exit does not complain about the broken pipe either)
    and reports ``broken``, which ends the run as a quit would.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._out = stream if stream is not None else sys.stdout
        self.lines = 0
        self.broken = False

    def write(self, record: dict) -> None:
        if self.broken:
            return
        try:
            self._out.write(record_json(record) + "\n")
            self._out.flush()
        except BrokenPipeError:
            self.broken = True
            self._silence()
            return
        self.lines += 1

    def _silence(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._out.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a real descriptor (a test's buffer): nothing to do
            pass

    def close(self) -> None:
        if not self.broken:
            try:
                self._out.flush()
            except BrokenPipeError:
                self.broken = True
                self._silence()

    def notes(self) -> list[str]:
        if self.broken:
            return [f"the reader of standard output closed it after {self.lines} lines, so the run stopped there."]
        return []


def parse_udp(target: str, flag: str = "--export") -> tuple[str, int]:
    """(host, port) of ``udp://HOST:PORT`` (IPv6 hosts in brackets), or one sentence saying what is wrong."""
    parts = urlsplit(target)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or not port or parts.path not in ("", "/"):
        raise UsageError(f"{flag} {target}: a UDP export is udp://HOST:PORT with a port from 1 to 65535, "
                         f"such as udp://127.0.0.1:11573.")
    return parts.hostname, port


class UdpSink:
    """One JSON datagram per frame to HOST:PORT, from a non-blocking socket.

    A datagram the kernel cannot take at once is dropped and counted (waiting would delay the
    frame loop); so is a send the network refuses. Records over ``MAX_DATAGRAM`` bytes are not
    sent, with one warning on stderr the first time and a count in the summary.
    """

    broken = False

    def __init__(self, target: str, flag: str = "--export") -> None:
        self.target = target
        host, port = parse_udp(target, flag)
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror:
            raise FkdError(f"{flag} {target}: the host name {host} could not be resolved.") from None
        self._address = address
        self._socket = socket.socket(family, kind, proto)
        self._socket.setblocking(False)
        self.sent = self.dropped = self.refused = self.too_big = 0

    def write(self, record: dict) -> None:
        data = record_json(record).encode("utf-8")
        if len(data) > MAX_DATAGRAM:
            self.too_big += 1
            if self.too_big == 1:
                print(f"warning: {self.target}: frame {record.get('frame')}'s record is {len(data):,} bytes, more "
                      f"than one datagram holds ({MAX_DATAGRAM:,}); such frames are not sent (counted in the "
                      f"summary).", file=sys.stderr)
            return
        try:
            self._socket.sendto(data, self._address)
        except (BlockingIOError, InterruptedError):
            self.dropped += 1
        except OSError:
            self.refused += 1
        else:
            self.sent += 1

    def close(self) -> None:
        self._socket.close()

    def notes(self) -> list[str]:
        line = f"{self.target}: {self.sent} datagrams sent"
        unsent = [(self.dropped, "dropped because the socket was full"),
                  (self.refused, "refused by the network"),
                  (self.too_big, f"not sent because the record was over {MAX_DATAGRAM:,} bytes")]
        extra = [f"{n} {why}" for n, why in unsent if n]
        return [line + (", " + ", ".join(extra) if extra else "") + "."]


def check_network_target(target: str, flag: str = "--export") -> None:
    """Refuse a malformed network export before anything is opened (the command line is at fault)."""
    if not target.lower().startswith("udp://"):
        raise UsageError(f"{flag} {target.split('://', 1)[0]}://...: the only network export is udp://HOST:PORT; "
                         f"give that, - for standard output, or a file path.")
    parse_udp(target, flag)


def open_sink(target: str | Path, flag: str = "--export") -> Sink:
    """The sink ``--export`` names: ``-``, ``udp://HOST:PORT``, or a file path."""
    text = str(target)
    if is_stdout(text):
        return StdoutSink()
    if is_network(text):
        check_network_target(text, flag)
        return UdpSink(text, flag)
    return FileSink(Path(target))
