"""`cargohold events targets` and `forget-target`: delivery's state per target, and a removed
target's cursor deleted so that it no longer holds the outbox's pruning back."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from cargohold.cli import main
from cargohold.domain.ecrevents import PUSH, image_action
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    database.upgrade(f"sqlite:///{data / 'metadata.db'}")
    return data


def prepare(data_dir: Path) -> None:
    """Three events; `old` (no longer configured) at 1, `ci` at 2 and delivering."""

    async def write() -> None:
        store = MetadataStore.from_url(f"sqlite:///{data_dir / 'metadata.db'}")
        try:
            async with store.write() as tx:
                events = [
                    image_action(
                        PUSH,
                        account="123456789012",
                        region="us-east-1",
                        repository="web",
                        digest="sha256:" + "c" * 64,
                        tag=f"v{n}",
                        now=1_700_000_000.0,
                    )
                    for n in range(3)
                ]
                await tx.outbox.append_events(events)
            async with store.write() as tx:
                await tx.outbox.advance_cursor("old", 0, 1, 1.0)
                await tx.outbox.advance_cursor("ci", 0, 2, 1.0)
                await tx.leases.acquire("events:ci", "deliverer-abc", 0.0, 4e9)
        finally:
            await store.close()

    anyio.run(write)


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = [
        {"name": "ci", "url": "https://ci.example/hook", "secret_env": "CI_SECRET"},
        {"name": "new", "url": "http://127.0.0.1:9/", "secret_env": "CI_SECRET"},
    ]
    monkeypatch.setenv("CARGOHOLD_EVENTS_WEBHOOKS", json.dumps(hooks))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["events", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_targets_shows_each_cursor_and_deliverer(
    capsys: pytest.CaptureFixture[str], data_dir: Path, configured: None
) -> None:
    prepare(data_dir)
    code, out, _ = run(capsys, "targets", "--data-dir", str(data_dir))
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["TARGET", "URL", "CURSOR", "NEWEST", "BEHIND", "DELIVERING"]
    assert rows[1:] == [
        ["ci", "https://ci.example/hook", "2", "3", "1", "deliverer-abc"],
        ["new", "http://127.0.0.1:9/", "-", "3", "-", "-"],
        ["old", "(not", "configured)", "1", "3", "2", "-"],
    ]


def test_forget_target_deletes_only_a_removed_targets_cursor(
    capsys: pytest.CaptureFixture[str], data_dir: Path, configured: None
) -> None:
    prepare(data_dir)
    code, _, err = run(capsys, "forget-target", "ci", "--data-dir", str(data_dir))
    assert code == 1 and "is configured" in err
    code, out, _ = run(capsys, "forget-target", "old", "--data-dir", str(data_dir))
    assert code == 0 and "forgot webhook target old" in out
    code, _, err = run(capsys, "forget-target", "old", "--data-dir", str(data_dir))
    assert code == 1 and "no webhook target old has a cursor" in err
    _, out, _ = run(capsys, "targets", "--data-dir", str(data_dir))
    assert [line.split()[0] for line in out.splitlines()] == ["TARGET", "ci", "new"]
