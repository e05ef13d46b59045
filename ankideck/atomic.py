"""All-or-nothing writes under unique temporary names, and the lock that lets one build at a time write a project.

Every output (deck, lock file, compile cache, figures) is first written in full to a temporary file beside it,
named ``.NAME.<random>.tmp`` so that two processes never share one, then renamed over the old file. A build writes
all of its temporary files before it renames any (``Staged``), so an output that cannot be written (a read-only or
full folder, a directory in the way) fails the build with the old outputs untouched. Builds in one project take
``build_lock`` first: a second build waits for the first, then sees its lock file.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"
STALE_FIGURE_TMP_S = 600  # a figure temp file this old belongs to no live render (previews render without the lock)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def new_temp(path: Path) -> Path:
    """Create an empty, uniquely named temporary file beside ``path`` (same file system, so a rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())  # mkstemp's 0600 would make the output private to this user
    return Path(name)


def write_temp(path: Path, data: bytes) -> Path:
    tmp = new_temp(path)
    try:
        tmp.write_bytes(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: Path, data: bytes) -> None:
    tmp = write_temp(path, data)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable_target(path: Path, shown: str) -> None:
    """Raise OSError when ``path`` cannot be replaced by a file (a directory, or something else that is no file)."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise OSError(f"cannot write {shown}: it is {'a directory' if path.is_dir() else 'not a regular file'}; "
                      "move it out of the way")


class Staged:
    """Outputs written to temporary files first; ``commit`` renames them into place in the order they were added."""

    def __init__(self):
        self.items: list[tuple[Path, Path]] = []  # (temporary file, target)

    def reserve(self, path: Path) -> Path:
        tmp = new_temp(path)
        self.items.append((tmp, path))
        return tmp

    def add(self, path: Path, data: bytes) -> None:
        self.items.append((write_temp(path, data), path))

    def commit(self) -> None:
        for tmp, path in self.items:
            os.replace(tmp, path)
        self.items = []

    def discard(self) -> None:
        for tmp, _ in self.items:
            tmp.unlink(missing_ok=True)
        self.items = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.discard()  # after commit there is nothing left; after a failure, no temporary file stays behind


def remove_stale_temps(targets: list[Path], figure_dir: Path | None = None) -> list[Path]:
    """Delete temporary files that a killed build left beside ``targets`` (call it holding the build lock).

    Removes ``.NAME.*.tmp`` and the older fixed names ``NAME.tmp`` / ``.NAME.tmp``; under ``figure_dir``, only
    temporary files older than STALE_FIGURE_TMP_S (a preview may be rendering without the lock).
    """
    removed = []
    for target in targets:
        folder = target.parent
        if not folder.is_dir():
            continue
        for path in folder.glob(f".{glob_escape(target.name)}.*{TMP_SUFFIX}"):
            removed.append(path)
        for name in (f"{target.name}{TMP_SUFFIX}", f".{target.name}{TMP_SUFFIX}"):
            if (folder / name).is_file():
                removed.append(folder / name)
    if figure_dir is not None and figure_dir.is_dir():
        cutoff = time.time() - STALE_FIGURE_TMP_S
        for path in figure_dir.glob(f".*{TMP_SUFFIX}"):
            try:
                if path.stat().st_mtime < cutoff:
                    removed.append(path)
            except OSError:
                pass
    for path in removed:
        try:
            path.unlink()
        except OSError:
            pass
    return removed


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


class BuildBusy(OSError):
    pass


@contextmanager
def build_lock(path: Path, shown: str, wait_s: float = 600.0, on_wait=None):
    """Hold an exclusive lock on ``path`` (created if missing) while the block runs; wait for another holder.

    ``on_wait`` is called once if another build holds the lock. After ``wait_s`` seconds, BuildBusy.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking (builds there must not run concurrently)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            deadline = time.monotonic() + wait_s
            while True:
                time.sleep(0.05)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise BuildBusy(f"another build is still running in this project (it holds {shown}); "
                                        "try again when it has finished") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {' '.join(sys.argv[:2])}\n".encode("utf-8", "replace"))
        yield
    finally:
        os.close(fd)  # closing releases the lock
