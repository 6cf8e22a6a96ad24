"""What a batch command's SOURCE arguments name, expanded to one list before any work is done.

fkd-predict's SOURCE may be a photo, a folder (searched recursively), a glob (``'photos/*/*.jpg'``,
quoted so that fkd expands it, ``**`` for any depth), or a text file (``.txt``, ``.lst``,
``.list``) listing one path or URI per line (blank lines and ``#`` comments skipped; relative paths
are taken from the current folder, as a shell would). URIs (``s3://``, ``gs://``, ``file://``...)
are read by Ray Data, so only ``--ray`` accepts them. fkd-live's several videos are files,
folders or globs in the same way.

Each photo also gets the name of its annotated copy under ``--output``: a folder's own name and
the path below it (as before), a glob's base folder's name and the path below it, a photo named
alone its file name, and a listed path or URI its path without scheme, root or ``..`` (so the
copies of two listed photos with the same file name do not overwrite each other).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fkd.model.errors import FkdError, UsageError
from fkd.model.io.paths import shown
from fkd.realtime.sources.images import IMAGE_SUFFIXES, list_images
from fkd.realtime.sources.network import is_url

LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".ts", ".mts", ".3gp"})
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Photo:
    """One input photo: a local (or shared) ``path``, or a ``uri`` that Ray Data reads."""

    key: str  # what its record calls it: the path as found, or the URI
    name: Path  # its annotated copy, under --output
    path: Path | None = None
    uri: str | None = None


def is_glob(text: str) -> bool:
    return bool(GLOB_CHARS & set(text))


def is_list_file(path: Path) -> bool:
    return path.suffix.lower() in LIST_SUFFIXES and path.is_file()


def plain_name(text: str) -> Path:
    """A listed path or URI as a relative name: no scheme, no root, no ``.`` or ``..``."""
    if is_url(text):
        text = text.split("://", 1)[1]
    parts = [p for p in PurePosixPath(text.replace("\\", "/")).parts if p not in ("/", ".", "..")]
    return Path(*parts) if parts else Path("photo")


def glob_base(pattern: str) -> Path:
    """The folder a glob's matches lie under: its parts before the first one with a wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if is_glob(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def expand_glob(pattern: str, suffixes: frozenset[str]) -> list[Path]:
    """The files a glob matches (``**`` any depth), sorted, keeping those with one of ``suffixes``."""
    found = sorted(glob.glob(pattern, recursive=True))
    return [Path(f) for f in found if Path(f).suffix.lower() in suffixes and os.path.isfile(f)]


def read_list(path: Path) -> list[str]:
    """The entries of a list file: one path or URI per line, blank lines and ``#`` comments skipped."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FkdError(f"SOURCE {shown(path)}: the list cannot be read ({e.strerror}).") from None
    lines = [os.fsdecode(line.strip()) for line in data.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def expand_photos(sources: Iterable[str | Path], remote: bool = False) -> list[Photo]:
    """Every photo the SOURCE arguments name, each once, in the order given (folders sorted).

    ``remote`` allows URIs (``--ray``); without it a URI is refused in one sentence. Remote
    folders and globs are listed through pyarrow (realtime/batch/remote_listing.py), which comes with
    the ray extra.
    """
    photos: dict[str, Photo] = {}
    for source in sources:
        for photo in _expand_one(str(source), remote):
            photos.setdefault(photo.key, photo)
    return list(photos.values())


def _expand_one(text: str, remote: bool) -> Iterator[Photo]:
    if is_url(text):
        yield from _remote(text, remote, listed=False)
        return
    path = Path(text)
    if path.is_dir():
        for found, name in list_images([path]):
            yield Photo(str(found), name, path=found)
    elif is_list_file(path):
        for entry in read_list(path):
            if is_url(entry):
                yield from _remote(entry, remote, listed=True)
            else:
                yield Photo(entry, plain_name(entry), path=Path(entry))
    elif is_glob(text) and not path.exists():
        base = glob_base(text)
        for found in expand_glob(text, IMAGE_SUFFIXES):
            yield Photo(str(found), Path(base.resolve().name) / found.relative_to(base), path=found)
    else:  # a file named alone, whatever its suffix (a non-image is reported, not ignored)
        yield Photo(text, Path(path.name), path=path)


def _remote(uri: str, remote: bool, listed: bool) -> Iterator[Photo]:
    if not remote:
        raise UsageError(f"SOURCE {uri} is a URI; only --ray reads URIs (through Ray Data), so add --ray "
                         f"or give a local path.")
    from fkd.realtime.batch.remote_listing import list_remote, normal_uri

    # a listed object is taken as it is (a missing one gets its error record at the end); others are listed
    for found in [uri] if listed and not is_glob(uri) else list_remote(uri, IMAGE_SUFFIXES):
        _, prefix, path = normal_uri(found)
        yield Photo(prefix + path, plain_name(prefix + path), uri=prefix + path)


def expand_videos(sources: Iterable[str]) -> list[Path]:
    """Every video several ``--video`` values name (files, folders, globs), each once, in order."""
    videos: dict[str, Path] = {}
    for text in sources:
        path = Path(text)
        if is_url(text):
            raise UsageError(f"--video {text}: several videos are read from files; a stream runs alone "
                             f"(fkd-live --video URL).")
        if path.is_dir():
            found = [Path(root) / name for root, dirs, files in sorted(os.walk(path)) for name in sorted(files)
                     if Path(name).suffix.lower() in VIDEO_SUFFIXES]
            if not found:
                raise FkdError(f"--video {shown(path)} is a folder that holds no video file "
                               f"({', '.join(sorted(VIDEO_SUFFIXES))}).")
        elif is_glob(text) and not path.exists():
            found = expand_glob(text, VIDEO_SUFFIXES)
            if not found:
                raise FkdError(f"--video {text} matches no video file.")
        else:
            found = [path]
        for video in found:
            videos.setdefault(str(video), video)
    return list(videos.values())


def is_video_batch(video: str | None, more: Sequence[str], ray: str | None) -> bool:
    """Whether fkd-live was given several videos (more files, a folder or a glob) or ``--ray``."""
    if ray is not None or more:
        return True
    if video is None or is_url(video):
        return False
    return os.path.isdir(video) or (is_glob(video) and not os.path.exists(video))
