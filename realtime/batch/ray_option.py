"""``--ray [ADDRESS]``: an option whose value may be left out, which typer cannot declare itself.

``--ray`` alone means a Ray started inside the command; ``--ray auto``, ``--ray HOST:PORT`` and
``--ray ray://HOST:PORT`` join a cluster. The command class below puts ``local`` after a bare
``--ray`` before typer parses the line: when ``--ray`` ends the line, or the next word is another
option or does not look like an address (a SOURCE such as ``photos/``). Light on purpose: it
loads with the command line, before any command runs.
"""

from __future__ import annotations

import re
import socket
from typing import Any

from typer.core import TyperCommand

from fkd.model.errors import FkdError, UsageError
from fkd.realtime.defaults import VMC_HOST, VMC_PORT

#: ``--ray`` given without an address: a Ray inside this command
LOCAL = "local"
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$")

#: (--help is rich markup: ``\\[`` keeps the extra's brackets from being read as a style tag)
RAY_HELP = ("Run on Ray: alone, a Ray inside this command (all usable cores, or --workers); auto, HOST:PORT or "
            "ray://HOST:PORT join a cluster (ray start --head, then --ray auto). Needs pip install \"fkd\\[ray]\".")


def looks_like_address(text: str) -> bool:
    """Whether the word after ``--ray`` is its address (else it is the next argument)."""
    return text in (LOCAL, "auto") or text.startswith("ray://") or _HOST_PORT.match(text) is not None


def check_address(address: str) -> str:
    """``address`` if it is one (else a usage error); a cluster's head must also accept a connection."""
    if not looks_like_address(address):
        raise UsageError(f"--ray {address}: an address is auto, HOST:PORT or ray://HOST:PORT (or none, for a "
                         f"Ray inside this command); put SOURCE before --ray.")
    if address not in (LOCAL, "auto"):
        reach(address)
    return address


#: Seconds a cluster's head has to accept a connection: Ray itself waits minutes for an address
#: where nothing listens, with no word on why.
CONNECT_TIMEOUT = 10.0


def reach(address: str) -> None:
    """Refuse, in one sentence, a HOST:PORT (or ray://HOST:PORT) where nothing accepts connections."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            return
    except (OSError, ValueError) as e:
        why = "the host name could not be resolved" if isinstance(e, socket.gaierror) else \
            f"nothing accepted a connection within {CONNECT_TIMEOUT:g} s" if isinstance(e, TimeoutError) else \
            f"nothing accepts connections there ({e.strerror or e})" if isinstance(e, OSError) else str(e)
    raise FkdError(f"--ray {address}: no Ray cluster could be reached: {why}; check the address that "
                   f"`ray start --head` printed, or give --ray alone for a Ray inside this command.")


def with_ray_default(args: list[str]) -> list[str]:
    """``args`` with ``local`` after each ``--ray`` that has no address, and the avatar apps' default
    address after a ``--vmc`` that ends the line or is followed by another option (nothing after
    ``--`` changes)."""
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg == "--":
            out.extend(args[i + 1:])
            break
        if arg == "--ray" and (i + 1 == len(args) or not looks_like_address(args[i + 1])):
            out.append(LOCAL)
        if arg == "--vmc" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            out.append(f"{VMC_HOST}:{VMC_PORT}")
    return out


class RayOptionCommand(TyperCommand):
    """A typer command whose ``--ray`` (and fkd-live's ``--vmc``) takes an optional address."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, with_ray_default(list(args)))
