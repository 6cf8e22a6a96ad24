"""A rich progress bar on stderr for batch work (photos, videos), shared by every way of running it.

The bar is transient and drawn only on a terminal: in a pipe or a test it prints nothing, so the
warnings and the summary line stay the only output on stderr.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``, which moves the bar on by ``n`` units of ``label``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:  # rich would still end with an empty line in a pipe or a file
        yield _nothing
        return
    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
    task = progress.add_task(label, total=total)
    progress.start()

    def advance(n: int = 1) -> None:
        progress.advance(task, n)

    try:
        yield advance
    finally:
        progress.stop()


def _nothing(n: int = 1) -> None:
    """``advance`` where no bar is drawn."""
