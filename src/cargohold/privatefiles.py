"""Files and directories only their owner can reach, whatever the process umask.

Everything cargohold creates in its data directory (the metadata database, blobs, staged
uploads, the master key) is created 0600, and every directory 0700. Creating with these modes
already keeps others out under any umask (a umask only removes bits); the `chmod` after creating
makes the owner's bits exact too. Files and directories that already exist keep their modes,
except where a caller tightens them on purpose (`restrict`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dirs(path: Path) -> None:
    """Create the directory `path`, and any missing parent, 0700; an existing one is kept as
    it is. One `mkdir` when the directory exists, as `Path.mkdir(exist_ok=True)`."""
    try:
        os.mkdir(path, PRIVATE_DIR)
    except FileExistsError:
        if not path.is_dir():
            raise
        return
    except FileNotFoundError:
        if path.parent == path:
            raise
        make_private_dirs(path.parent)
        make_private_dirs(path)
        return
    os.chmod(path, PRIVATE_DIR)


def create_private_file(path: Path, flags: int = os.O_WRONLY, *, exclusive: bool = True) -> int:
    """Open `path` with `flags`, creating it 0600 (an existing file: only when not `exclusive`,
    and then also made 0600); returns the descriptor."""
    creating = os.O_CREAT | (os.O_EXCL if exclusive else 0)
    fd = os.open(path, flags | creating | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def restrict(path: Path) -> None:
    """Take away group's and others' access to an existing file or directory of ours (a file
    created by an earlier version under a wider umask); nothing when it is absent, or not ours
    to change."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        with contextlib.suppress(PermissionError):
            os.chmod(path, mode & 0o700)
