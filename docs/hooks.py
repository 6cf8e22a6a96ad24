"""MkDocs hook: the lab-notebook page (docs/results.md) is bench/RESULTS.md, included as it is.

The include is done here rather than by pymdownx.snippets because the notebook links its
pictures as seen from bench/ (``../docs/x.png``), and MkDocs checks links before a snippet
could be rewritten; on the page, which lives in docs/, the same picture is ``x.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NOTEBOOK = Path(__file__).resolve().parents[1] / "bench" / "RESULTS.md"
MARKER = '--8<-- "bench/RESULTS.md"'


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != "results.md":
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/results.md should hold the line {MARKER}")
    notebook = NOTEBOOK.read_text(encoding="utf-8").replace("](../docs/", "](")
    return markdown.replace(MARKER, notebook)
