"""What the five commands share: the one error path, the deprecation notice, the thread range.

Both CLI modules (``fkd.train.cli`` and ``fkd.realtime.cli``) run their work inside
``reported_errors()``, so a failure looks and exits the same whichever command hit it: one
line ``error: <sentence>`` on stderr, no traceback, and the exit code the error carries
(``FkdError`` 1, ``UsageError`` 2; see ``fkd.model.errors``). It lives in ``model/`` because
``train/`` and ``realtime/`` must not import each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

import typer

from fkd.model.errors import FkdError, UsageError

T = TypeVar("T")

#: ``--threads`` accepts 1..MAX_THREADS in every command: more than the cores only adds contention.
MAX_THREADS = 64

#: ``--flip/--no-flip`` in fkd-predict, fkd-eval, fkd-submit (on) and fkd-live (off): one wording.
FLIP_HELP = ("Also run each face mirrored and average the two answers: 2.3 % lower NME, twice the "
             "network's time (bench/flip_average.py).")


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn an ``FkdError`` raised inside into its one-sentence message and exit code."""
    try:
        yield
    except FkdError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None


def deprecated(old_flag: str, old_value: T | None, new_flag: str, new_value: T | None) -> T | None:
    """The value of a flag that has a new name; the old one still works, with a one-line notice.

    Old spellings are kept for one release so that scripts keep running while they are updated.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise UsageError(f"give {new_flag} only; {old_flag} is its deprecated old name.")
    typer.echo(f"warning: {old_flag} is deprecated and will be removed in the next release; use {new_flag}.",
               err=True)
    return old_value
