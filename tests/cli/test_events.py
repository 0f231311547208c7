"""`cargohold events tail`: the outbox's events as JSON lines, from the start, after an id or
from now on, once or following what is written next; on a data directory without a registry,
a clear refusal."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from cargohold import events_cli
from cargohold.cli import main
from cargohold.domain.ecrevents import PUSH, EcrEvent, image_action
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.service.events import READ_BATCH
from support.waiting import wait_until

ACCOUNT = "123456789012"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    database.upgrade(f"sqlite:///{data / 'metadata.db'}")
    return data


def pushed(tag: str) -> EcrEvent:
    return image_action(
        PUSH,
        account=ACCOUNT,
        region="us-east-1",
        repository="web",
        digest="sha256:" + "c" * 64,
        tag=tag,
        now=1_700_000_000.0,
    )


def append(data_dir: Path, *tags: str) -> list[str]:
    """Write one push event per tag; their JSON texts."""
    events = [pushed(tag) for tag in tags]

    async def write() -> None:
        store = MetadataStore.from_url(f"sqlite:///{data_dir / 'metadata.db'}")
        try:
            async with store.write() as tx:
                await tx.outbox.append_events(events)
        finally:
            await store.close()

    anyio.run(write)
    return [event.to_json() for event in events]


def tail(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> list[str]:
    assert main(["events", "tail", "--data-dir", str(data_dir), "--no-follow", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_once_from_the_start_after_an_id_or_from_now(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    # More than one read's worth, so that reading on after a full batch is exercised.
    written = append(data_dir, *(f"v{n}" for n in range(READ_BATCH + 3)))
    assert tail(capsys, data_dir, "--from-start") == written
    assert tail(capsys, data_dir, "--since-id", str(READ_BATCH)) == written[READ_BATCH:]
    assert tail(capsys, data_dir) == []
    tags = [
        json.loads(line)["detail"]["image-tag"] for line in tail(capsys, data_dir, "--from-start")
    ]
    assert tags[:2] == ["v0", "v1"] and len(tags) == READ_BATCH + 3


def test_a_bad_id_and_a_missing_registry_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit):
        main(["events", "tail", "--since-id", "-4"])
    assert "not an event id" in capsys.readouterr().err
    assert main(["events", "tail", "--data-dir", str(tmp_path / "none"), "--no-follow"]) == 1
    assert "there is no data directory" in capsys.readouterr().err


def test_follow_prints_what_is_written_next_until_interrupted(data_dir: Path) -> None:
    (first,) = append(data_dir, "before")
    command = [sys.executable, "-m", "cargohold", "events", "tail", "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [*command, "--from-start", "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    lines: queue.Queue[str] = queue.Queue()
    received: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or ()])
    reader.start()

    def have(count: int) -> bool:
        while not lines.empty():
            received.append(lines.get().rstrip("\n"))
        return len(received) >= count

    try:
        wait_until(lambda: have(1), message="the first event was never printed")
        later = append(data_dir, "after-1", "after-2")
        wait_until(lambda: have(3), message="the events written later were never printed")
        assert received == [first, *later]
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        reader.join(timeout=30)
    stderr = process.stderr.read() if process.stderr else ""
    assert code == 130 and "Traceback" not in stderr


def test_a_first_interrupt_asks_to_stop_and_a_second_interrupts_at_once() -> None:
    stop = anyio.Event()
    seen: list[str] = []

    async def run() -> None:
        with anyio.fail_after(30), events_cli._interrupts(stop):
            os.kill(os.getpid(), signal.SIGINT)
            await stop.wait()
            seen.append("asked to stop")
            os.kill(os.getpid(), signal.SIGINT)
            await anyio.sleep_forever()

    with pytest.raises(KeyboardInterrupt):
        anyio.run(run)
    assert seen == ["asked to stop"]
