"""Whatever the process umask, the storage driver, the SQLite database (with its WAL and shared
memory files) and the master key are created 0600 in directories created 0700; database files
left readable by others by an earlier version lose that access when the database is opened."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from cargohold.auth.secretbox import SecretBox
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.privatefiles import make_private_dirs
from cargohold.storage.filesystem import FilesystemDriver

UMASKS = [0o000, 0o022, 0o277]


@pytest.fixture(params=UMASKS, ids=[f"umask-{u:03o}" for u in UMASKS])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    value: int = request.param
    previous = os.umask(value)
    try:
        yield value
    finally:
        os.umask(previous)


def modes(top: Path) -> dict[str, int]:
    """Mode of every directory and file under `top` (not `top` itself), by relative path."""
    found: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            found[path.relative_to(top).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(top: Path) -> dict[str, int]:
    found = modes(top)
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (top / name).is_dir() else 0o600)
    }
    assert not wrong, f"not private: {wrong}"
    return found


async def _store_blobs(driver: FilesystemDriver) -> None:
    data = b"monolithic"
    await driver.put(f"blobs/sha256/aa/{hashlib.sha256(data).hexdigest()}", data)
    state = await driver.begin_upload("0f1e2d3c-upload-committed")
    writer = await driver.open_upload(state, 0)
    await writer.write([b"chunk one ", b"chunk two"])
    state = await writer.close()
    await driver.commit_upload(state, "blobs/sha256/bb/committed", 19)
    staged = await driver.begin_upload("4b5a6978-upload-open")
    writer = await driver.open_upload(staged, 0)
    await writer.write([b"partial"])
    await writer.close()


def test_the_storage_driver_creates_private_files(tmp_path: Path, umask: int) -> None:
    driver = FilesystemDriver(tmp_path / "data" / "storage")
    anyio.run(_store_blobs, driver)
    found = assert_private(tmp_path)
    assert {
        "data",
        "data/storage/_uploads/4b5a6978-upload-open",
        "data/storage/_tmp",
        "data/storage/blobs/sha256/bb/committed",
        "data/storage/blobs/sha256/aa",
    } <= set(found)


async def _write_through(url: str) -> set[str]:
    store = MetadataStore.from_url(url)
    try:
        async with store.write() as tx:
            await tx.registries.ensure_registry("123456789012", "us-east-1", 1.0)
        # The WAL and its index exist while a connection is open.
        return {path.name for path in Path(url.removeprefix("sqlite:///")).parent.iterdir()}
    finally:
        await store.close()


def test_the_sqlite_database_and_its_journal_are_private(tmp_path: Path, umask: int) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'metadata.db'}"
    database.upgrade(url)
    present = anyio.run(_write_through, url)
    assert {"metadata.db", "metadata.db-wal", "metadata.db-shm"} <= present
    assert_private(tmp_path)


def test_an_existing_database_readable_by_others_is_made_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    database.upgrade(url)
    db = tmp_path / "metadata.db"
    db.chmod(0o644)
    database.upgrade(url)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_the_master_key_is_private(tmp_path: Path, umask: int) -> None:
    box = SecretBox.from_key_file(tmp_path / "data" / "keys" / "master.key")
    assert box.decrypt(box.encrypt(b"x")) == b"x"
    assert set(assert_private(tmp_path)) == {"data", "data/keys", "data/keys/master.key"}


def test_existing_directories_keep_their_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    make_private_dirs(shared / "a" / "b")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((shared / "a" / "b").stat().st_mode) == 0o700
    (shared / "file").write_text("")
    with pytest.raises(FileExistsError):
        make_private_dirs(shared / "file")
