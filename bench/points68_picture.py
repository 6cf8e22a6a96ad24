"""The picture of the 68 points' order for the docs: the mean whole-face layout, each point with
its index (0-based, as in records' ``points68``), the contours the overlay draws.

    python bench/points68_picture.py docs/points68.png
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from fkd.model.points import IBUG68_SET
from fkd.realtime.outputs.draw import draw_contours

SCALE = 9


def main(path: str) -> None:
    size = 96 * SCALE
    image = np.full((size, size, 3), 255, np.uint8)
    points = (IBUG68_SET.template + 0.5) * SCALE
    draw_contours(image, points, 2)
    for i, (x, y) in enumerate(points):
        cv2.circle(image, (round(x), round(y)), 4, (40, 40, 200), -1, cv2.LINE_AA)
        cv2.putText(image, str(i), (round(x) + 5, round(y) - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1,
                    cv2.LINE_AA)
    cv2.putText(image, "subject's right", (20, size - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (20, 20, 20), 1, cv2.LINE_AA)
    cv2.putText(image, "subject's left", (size - 190, size - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (20, 20, 20), 1,
                cv2.LINE_AA)
    top, bottom = int(points[:, 1].min()) - 40, size
    cv2.imwrite(path, image[max(0, top):bottom])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/points68.png")
