"""Private files at rest: folders the service creates are 0700, files holding data or keys 0600."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700; warn if it exists open to other users."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # created meanwhile by another process
            pass
    if not missing and path.stat().st_mode & 0o077:
        log.warning("%s is accessible by other users (chmod 700 it)", path)
    return path


def private_file(path: Path, content: bytes = b"") -> bool:
    """Create ``path`` with mode 0600 (and ``content``) unless it exists; True if this call created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True
