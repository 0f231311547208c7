"""Layers applied with the OCI whiteout rules, and nothing written outside the root."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from cargohold.agent.rootfs import LayerError, unpack


def layer(tmp: Path, name: str, entries: list[tuple[str, str, bytes | str]]) -> Path:
    """(kind, path, data or link target); kind: f(ile), d(ir), l(symlink), h(ard link)."""
    path = tmp / f"{name}.tar"
    with tarfile.open(path, "w") as tar:
        for kind, member, data in entries:
            info = tarfile.TarInfo(member)
            if kind == "d":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif kind in ("l", "h"):
                info.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
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


@pytest.mark.parametrize(
    "member",
    [("f", "escape/victim", b"owned"), ("f", "escape/.wh.victim", b"")],
    ids=["write-through-link", "whiteout-through-link"],
)
def test_a_later_layer_cannot_reach_out_of_the_root_through_a_link(
    tmp_path: Path, member: tuple[str, str, bytes]
) -> None:
    """A symlink out of the root in one layer, then a file (or a whiteout) under it in the
    next: neither may write or delete the file outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("safe")
    first = layer(tmp_path, "first", [("l", "escape", str(outside))])
    second = layer(tmp_path, "second", [member])
    with pytest.raises(LayerError):
        unpack([first, second], tmp_path / "root")
    assert (outside / "victim").read_text() == "safe"


def test_dot_dot_names_are_refused(tmp_path: Path) -> None:
    bad = layer(tmp_path, "bad", [("f", "../evil", b"x")])
    with pytest.raises(LayerError):
        unpack([bad], tmp_path / "root")
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("name", ["..", "etc/..", ".wh...", "etc/.wh..."])
def test_a_name_ending_in_dot_dot_removes_nothing_above_it(tmp_path: Path, name: str) -> None:
    """A member or whiteout named `..` would stand for the directory above; replacing it (or
    whiting it out) must not remove the root's parent or the root."""
    work = tmp_path / "work"
    (work / "root").mkdir(parents=True)
    (work / "sibling").write_text("safe")
    lower = layer(tmp_path, "lower", [("d", "etc", b""), ("f", "etc/keep", b"1")])
    bad = layer(tmp_path, "bad", [("f", name, b"x")])
    with pytest.raises(LayerError):
        unpack([lower, bad], work / "root")
    assert (work / "sibling").read_text() == "safe"
    assert (work / "root" / "etc" / "keep").read_text() == "1"


@pytest.mark.parametrize("target", ["outside/victim", "/outside/victim"])
def test_a_hard_link_cannot_reach_a_file_outside_the_root(tmp_path: Path, target: str) -> None:
    """A hard link names its target by path: one out of the root would give the container (and
    the unpacking, which sets the link's mode and owner) the host's file itself."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("safe")
    victim.chmod(0o600)
    root = tmp_path / "work" / "root"
    escaping = "../../" + target if not target.startswith("/") else str(tmp_path) + target
    bad = layer(tmp_path, "bad", [("h", "linked", escaping)])
    with pytest.raises(LayerError):
        unpack([bad], root)
    assert not (root / "linked").exists()
    assert victim.stat().st_nlink == 1
    assert victim.stat().st_mode & 0o777 == 0o600


def test_a_hard_link_through_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("safe")
    root = tmp_path / "root"
    bad = layer(tmp_path, "bad", [("l", "escape", str(outside)), ("h", "linked", "escape/victim")])
    with pytest.raises(LayerError):
        unpack([bad], root)
    assert (outside / "victim").stat().st_nlink == 1


def test_a_hard_link_inside_the_root_is_kept(tmp_path: Path) -> None:
    good = layer(
        tmp_path, "good", [("d", "bin", b""), ("f", "bin/a", b"tool"), ("h", "bin/b", "bin/a")]
    )
    root = tmp_path / "root"
    unpack([good], root)
    assert (root / "bin" / "b").read_text() == "tool"
    assert (root / "bin" / "a").stat().st_ino == (root / "bin" / "b").stat().st_ino
