"""Listing remote folders and globs (``s3://bucket/photos/``, ``gs://b/*/*.jpg``) through pyarrow.

Ray Data reads the objects themselves; fkd lists them first so that the run knows every photo
before it starts (for the progress bar, the summary, and resuming a run). pyarrow comes with the
ray extra and is imported only here, only for URIs.
"""

from __future__ import annotations

import fnmatch
import functools

from fkd.model.errors import FkdError


def split_uri(uri: str) -> tuple[object, str, str]:
    """(pyarrow filesystem, path within it, the prefix that turns such a path back into a URI)."""
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as e:  # an unknown scheme, or a filesystem pyarrow was built without
        raise FkdError(f"SOURCE {uri}: pyarrow cannot read this URI ({e}).") from None
    scheme, rest = uri.split("://", 1)
    netloc = rest.split("/", 1)[0] if path.startswith("/") and not rest.startswith("/") else ""
    return filesystem, path, f"{scheme}://{netloc}"


@functools.lru_cache(maxsize=64)
def _prefix(scheme: str, first: str) -> tuple[object, str]:
    """(filesystem, URI prefix) for the URIs that start ``scheme://first/``: one pyarrow look-up
    per bucket or host, not one per photo."""
    filesystem, _, prefix = split_uri(f"{scheme}://{first}/x")
    return filesystem, prefix


def normal_uri(uri: str) -> tuple[object, str, str]:
    """(filesystem, URI prefix, path within the filesystem) of ``uri``; prefix + path is the URI as
    records and resumed runs know it, and the path is what Ray Data's path column gives back."""
    scheme, rest = uri.split("://", 1)
    filesystem, prefix = _prefix(scheme, rest.split("/", 1)[0])
    return filesystem, prefix, uri[len(prefix):]


def list_remote(uri: str, suffixes: frozenset[str]) -> list[str]:
    """The URIs of the objects ``uri`` names: itself, everything below it (a folder), or its glob's
    matches, keeping objects with one of ``suffixes`` when listing; sorted."""
    from pyarrow import fs

    wild = next((i for i, c in enumerate(uri) if c in "*?["), None)
    base = uri if wild is None else uri[: uri.rfind("/", 0, wild) + 1]
    filesystem, path, prefix = split_uri(base)
    try:
        info = filesystem.get_file_info(path)  # type: ignore[attr-defined]
        if wild is None and info.type != fs.FileType.Directory:
            return [uri]  # an object, or a missing one: Ray Data reports it missing at the end
        if info.type != fs.FileType.Directory:
            raise FkdError(f"SOURCE {uri}: {base} is not a folder, so the pattern matches nothing.")
        listing = filesystem.get_file_info(fs.FileSelector(path, recursive=True))  # type: ignore[attr-defined]
    except OSError as e:
        raise FkdError(f"SOURCE {uri} cannot be listed ({e}).") from None
    found = sorted(prefix + f.path for f in listing if f.type == fs.FileType.File
                   and f.path[f.path.rfind("."):].lower() in suffixes)
    if wild is not None:
        found = [f for f in found if fnmatch.fnmatchcase(f, uri)]
    return found
