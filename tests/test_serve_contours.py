"""The --serve page draws a 68-point face's contours from its own copy of the contour list;
it must be the one ``fkd.model.schema`` declares, which the overlay draws."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fkd.model.schema import IBUG68_CONTOURS

PAGE = Path(__file__).resolve().parents[1] / "realtime/outputs/page/live.js"


def test_the_page_draws_the_same_contours_as_the_overlay() -> None:
    text = PAGE.read_text()
    found = re.search(r"const CONTOURS68 = (\[.*?\]);", text, re.S)
    assert found, "live.js no longer declares CONTOURS68"
    page = [(list(range(first, last + 1)), closed) for first, last, closed in json.loads(found.group(1))]
    assert page == [(list(idx), closed) for idx, closed in IBUG68_CONTOURS.values()]
    assert "face.points68" in text
