"""Layers applied with the OCI whiteout rules, and nothing written outside the root."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from cargohold.agent.rootfs import LayerError, unpack


def layer(tmp: Path, name: str, entries: list[tuple[str, str, bytes | str]]) -> Path:
    """(kind, path, data or link target); kind: f(ile), d(ir), l(symlink)."""
    path = tmp / f"{name}.tar"
    with tarfile.open(path, "w") as tar:
        for kind, member, data in entries:
            info = tarfile.TarInfo(member)
            if kind == "d":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif kind == "l":
                info.type = tarfile.SYMTYPE
                info.linkname = str(data)
                tar.addfile(info)
            else:
                content = data if isinstance(data, bytes) else data.encode()
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def test_whiteouts_remove_and_opaque_directories_empty(tmp_path: Path) -> None:
    lower = layer(
        tmp_path,
        "lower",
        [
            ("d", "etc", b""),
            ("f", "etc/keep", b"1"),
            ("f", "etc/gone", b"2"),
            ("d", "var", b""),
            ("f", "var/old", b"3"),
            ("f", "file", b"lower"),
        ],
    )
    upper = layer(
        tmp_path,
        "upper",
        [
            ("f", "etc/.wh.gone", b""),
            ("d", "var", b""),
            ("f", "var/.wh..wh..opq", b""),
            ("f", "var/new", b"4"),
            ("f", "file", b"upper"),
        ],
    )
    root = tmp_path / "root"
    unpack([lower, upper], root)
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["keep"]
    assert sorted(p.name for p in (root / "var").iterdir()) == ["new"]
    assert (root / "file").read_text() == "upper"


def test_a_layer_cannot_write_through_a_link_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("safe")
    first = layer(tmp_path, "first", [("l", "escape", str(outside))])
    second = layer(tmp_path, "second", [("f", "escape/victim", b"owned")])
    with pytest.raises(LayerError):
        unpack([first, second], tmp_path / "root")
    assert (outside / "victim").read_text() == "safe"


def test_a_whiteout_cannot_delete_outside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("safe")
    first = layer(tmp_path, "first", [("l", "escape", str(outside))])
    second = layer(tmp_path, "second", [("f", "escape/.wh.victim", b"")])
    with pytest.raises(LayerError):
        unpack([first, second], tmp_path / "root")
    assert (outside / "victim").read_text() == "safe"


def test_dot_dot_names_are_refused(tmp_path: Path) -> None:
    bad = layer(tmp_path, "bad", [("f", "../evil", b"x")])
    with pytest.raises(LayerError):
        unpack([bad], tmp_path / "root")
    assert not (tmp_path / "evil").exists()
