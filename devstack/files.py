"""Files and directories for this user only.

Server logs can hold credentials (OpenBao's dev mode prints its root token, `Root Token: ...`): they are created
readable by this user only (0600, set at creation, never widened first), in directories only this user can enter.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["open_private", "private_dir", "write_private"]


def private_dir(path: Path) -> Path:
    """`path` as a directory only this user can enter: missing ones (parents too) are made 0700, and `path` itself
    is narrowed to 0700 if it is wider."""
    missing = []
    walk = path
    while not walk.exists():
        missing.append(walk)
        walk = walk.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def open_private(path: Path) -> int:
    """A new, empty file at `path` only this user can read or write, created 0600 (whatever was there is replaced,
    never reused with its mode; a symlink planted there is not followed). Returns the open descriptor, for writing."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)


def write_private(path: Path, text: str) -> Path:
    """Write `text` to a new 0600 file at `path` (see open_private)."""
    with os.fdopen(open_private(path), "w") as out:
        out.write(text)
    return path
