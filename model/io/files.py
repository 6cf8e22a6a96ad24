"""Writing files so that nothing is ever half-written: one home for fkd's atomic writes.

Every output goes to a temporary file in the target's own folder and is renamed over the
target only when complete, so a kill at any moment leaves either the old file or the new one.
Temporary names share one recognisable pattern, so a later run can remove the leftovers of a
run killed with -9 (``remove_stale_temporaries``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

TMP_SUFFIX = ".fkd-tmp"


def temporary_beside(path: Path, keep_suffix: bool = False) -> Path:
    """A new empty file next to ``path`` (same filesystem, so the final rename is atomic).

    ``keep_suffix`` ends the name in ``path``'s own suffix too, for writers that choose the
    format by it (cv2.VideoWriter picks the container from ``.mp4`` / ``.avi``).
    """
    path = Path(path)
    suffix = TMP_SUFFIX + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; outputs are meant to be shared
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    tmp = temporary_beside(path, keep_suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def target_of(temporary: Path) -> Path:
    """The file a temporary was made for: ``.name.XXXXXXXX.fkd-tmp[.ext]`` -> ``name``."""
    stem = temporary.name[1:].split(TMP_SUFFIX)[0]
    return temporary.with_name(stem.rsplit(".", 1)[0])


def remove_stale_temporaries(folder: Path, in_use: Callable[[Path], bool] | None = None) -> int:
    """Delete temporaries that a killed fkd run left in ``folder``; returns how many went.

    ``in_use(temporary)`` spares the ones another live run may still be writing.
    """
    removed = 0
    for leftover in Path(folder).glob(f".*{TMP_SUFFIX}*"):
        if in_use is not None and in_use(leftover):
            continue
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed += 1
    return removed


def finite_json(obj: object) -> object:
    """``obj`` with every NaN or infinite float as None (JSON has no NaN; readers choke on it)."""
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy scalars and arrays
        return finite_json(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def json_text(obj: object, indent: int | None = 1) -> str:
    """Strict JSON for fkd's reports: NaN and infinities become null, never the invalid ``NaN``."""
    return json.dumps(finite_json(obj), indent=indent, allow_nan=False)
