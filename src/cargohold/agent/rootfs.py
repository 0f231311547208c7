"""A container's root filesystem from its image's layers, applied lowest first with the OCI
whiteout rules: `.wh.NAME` removes NAME of the layers below, `.wh..wh..opq` empties its
directory of what the layers below put there.

Every path stays inside the root: members whose names or links lead outside it (`..`, an
absolute name, a path through a symlink out of the root) are refused by tarfile's `tar`
filter, and so are device nodes, which a container gets from no layer here.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class LayerError(Exception):
    pass


def _inside(root: Path, name: str) -> Path:
    """`root/name`, refusing a name that leaves the root (its parents resolved on disk)."""
    path = root / name.lstrip("/")
    parent = Path(os.path.realpath(path.parent))
    if parent != root and root not in parent.parents:
        raise LayerError(f"{name!r} leaves the root filesystem")
    return parent / path.name


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _whiteouts(root: Path, layer: tarfile.TarFile) -> None:
    """Apply a layer's whiteouts to what the layers below left in `root`."""
    for member in layer:
        directory, _, base = member.name.rstrip("/").rpartition("/")
        if base == OPAQUE:
            target = _inside(root, directory) if directory else root
            if target.is_dir() and not target.is_symlink():
                for child in target.iterdir():
                    _remove(child)
        elif base.startswith(WHITEOUT):
            _remove(_inside(root, f"{directory}/{base[len(WHITEOUT) :]}"))


def _no_devices(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    if member.isdev():
        return None
    if member.name.rpartition("/")[2].startswith(WHITEOUT):
        return None
    found = tarfile.tar_filter(member, path)
    # Keep the owners: the root filesystem belongs to the container's users.
    return found.replace(uid=member.uid, gid=member.gid, deep=False)


def unpack(layers: Iterable[Path], root: Path) -> None:
    """Build `root` (which must be empty or absent) from uncompressed layer tars."""
    root.mkdir(parents=True, exist_ok=True)
    root = Path(os.path.realpath(root))
    for path in layers:
        try:
            with tarfile.open(path, "r:") as layer:
                _whiteouts(root, layer)
            with tarfile.open(path, "r:") as layer:
                for member in layer:
                    if not member.isdir():
                        # A file replaces what a lower layer had at its path.
                        _remove(_inside(root, member.name))
                    layer.extract(member, root, filter=_no_devices)
        except (tarfile.TarError, OSError) as exc:
            raise LayerError(f"layer {path.name}: {exc}") from None
