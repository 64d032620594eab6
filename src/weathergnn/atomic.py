"""Atomic file writes: a temp file in the target's directory, flushed and
fsync-ed, then ``os.replace``-d over the target; on any failure (exceptions,
``KeyboardInterrupt``) the temp file is removed and the target is untouched.

Depends on nothing of ours; used by checkpoints, the graph and statistics
caches, scores and the timer's saved statistics.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "fsync_dir"]


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
    sync_dir: bool = False,
) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path`` for writing; on a clean exit it replaces ``path``.

    Args:
        path: target file; its directory must exist.
        mode: ``"wb"`` or ``"w"``.
        encoding, newline: as :func:`open` (text mode).
        sync_dir: also fsync the directory after the rename (best effort), so
            that the rename itself survives a power loss.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """fsync a directory (persists renames on POSIX); a no-op where unsupported."""
    with contextlib.suppress(OSError):  # not supported on every OS / file system
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
