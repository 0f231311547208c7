"""Runs inside the new namespaces `unshare` made for a `chroot` container, as their first
process: sets the host name, changes root and directory, becomes the container's user, and
executes its command with exactly its environment.

Standard library only: it is started with `python -I` on this file's path. The container's
spec (JSON) comes on the file descriptor named by the first argument, never on the command
line, since it may hold the task's credentials endpoint token.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any


def _lookup(path: str, name: str, field: int) -> int | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as entries:
            for line in entries:
                parts = line.rstrip("\n").split(":")
                if len(parts) > field and parts[0] == name:
                    return int(parts[field])
    except (OSError, ValueError):
        return None
    return None


def _ids(user: str) -> tuple[int, int] | None:
    """(uid, gid) of `uid`, `uid:gid`, `name` or `name:group`, read from the image's files."""
    if not user:
        return None
    name, _, group = user.partition(":")
    uid = int(name) if name.isdigit() else _lookup("/etc/passwd", name, 2)
    if uid is None:
        raise LookupError(f"unable to find user {name}: no matching entries in passwd file")
    if group:
        gid = int(group) if group.isdigit() else _lookup("/etc/group", group, 2)
        if gid is None:
            raise LookupError(f"unable to find group {group}: no matching entries in group file")
    else:
        found = _lookup("/etc/passwd", name, 3) if not name.isdigit() else None
        gid = found if found is not None else 0
    return uid, gid


def main() -> int:
    with os.fdopen(int(sys.argv[1]), encoding="utf-8") as source:
        spec: dict[str, Any] = json.load(source)
    try:
        socket.sethostname(spec["hostname"])
        os.chroot(spec["root"])
        os.chdir("/")
        ids = _ids(spec["user"])
        os.makedirs(spec["workdir"], exist_ok=True)
        os.chdir(spec["workdir"])
        if ids is not None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
    except (OSError, LookupError) as exc:
        print(f"cargohold: container init failed: {exc}", file=sys.stderr)
        return 126
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])  # noqa: S606 (the container's own command)
    except OSError as exc:
        print(f"cargohold: exec {argv[0]} failed: {exc.strerror}", file=sys.stderr)
    return 127


if __name__ == "__main__":
    sys.exit(main())
