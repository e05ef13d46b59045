"""The installed distributions' versions and metadata headers, read cheaply.

``importlib.metadata`` parses a distribution's whole METADATA file with the email package (a few milliseconds
each, and tens to import it): too slow for a warm build, which needs a handful of versions for its cache keys. This
finds the ``.dist-info`` (or ``.egg-info``) folder on ``sys.path`` the way importlib.metadata does, first match in
path order, and reads only the header lines; anything unusual falls back to importlib.metadata.
"""
from __future__ import annotations

import os
import re
import sys
from functools import lru_cache
from pathlib import Path

_SEPARATORS_RE = re.compile(r"[-_.]+")


def _normal(name: str) -> str:
    return _SEPARATORS_RE.sub("_", name).lower()


@lru_cache(maxsize=None)
def _entries(folder: str) -> tuple[str, ...]:
    try:
        return tuple(os.listdir(folder or "."))
    except OSError:
        return ()


def _metadata_file(dist: str) -> Path | None:
    wanted = _normal(dist)
    for folder in sys.path:
        for entry in _entries(folder):
            stem, dot, kind = entry.rpartition(".")
            if kind not in ("dist-info", "egg-info") or not dot:
                continue
            if _normal(stem.partition("-")[0]) == wanted:
                path = Path(folder or ".", entry, "METADATA" if kind == "dist-info" else "PKG-INFO")
                return path if path.is_file() else None
    return None


@lru_cache(maxsize=None)
def headers(dist: str) -> dict[str, list[str]]:
    """The metadata headers of the installed distribution ``dist`` (name -> values); raises LookupError if none."""
    path = _metadata_file(dist)
    if path is None:
        from importlib import metadata

        try:
            message = metadata.metadata(dist)
        except metadata.PackageNotFoundError:
            raise LookupError(dist) from None
        return {key: message.get_all(key) for key in set(message.keys())}
    found: dict[str, list[str]] = {}
    last = None
    with open(path, encoding="utf-8") as file:
        for line in file:
            line = line.rstrip("\r\n")
            if not line:
                break                                    # the body (the long description) starts here
            if line[0] in " \t" and last is not None:   # a continuation line
                found[last][-1] += "\n" + line.strip()
                continue
            key, _, value = line.partition(":")
            last = key.strip()
            found.setdefault(last, []).append(value.strip())
    return found


def version(dist: str) -> str:
    """``importlib.metadata.version(dist)``, without importing importlib.metadata; raises LookupError if none."""
    return headers(dist)["Version"][0]


def missing_requirements(dist: str) -> list[str]:
    """The requirements of ``dist`` (not its extras) that are not installed; ``["the DIST project"]`` if it is not."""
    try:
        requirements = headers(dist).get("Requires-Dist", [])
    except LookupError:
        return [f"the {dist} project"]
    missing = []
    for requirement in requirements:
        if "extra ==" in requirement:
            continue
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group()
        if _metadata_file(name) is None:
            try:
                headers(name)   # importlib.metadata knows more places than the .dist-info folders
            except LookupError:
                missing.append(name)
    return missing
