"""The event outbox on SQLite and PostgreSQL: events exist exactly when their transaction
commits, read back by ascending id; ids become visible in commit order even with concurrent
writers on PostgreSQL; cursors move by compare-and-set; pruning never brings an id back."""

from __future__ import annotations

import json
import random

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
import sqlalchemy as sa

from cargohold.domain.ecrevents import IMAGE_ACTION, EcrEvent
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.ports import OutboxRecord
from support.waiting import wait_for_event, wait_until_async

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"


def push(tag: str, *, repository: str = "web", at: float = 1_700_000_000.0) -> EcrEvent:
    detail = {
        "result": "SUCCESS",
        "repository-name": repository,
        "image-digest": "sha256:" + "a" * 64,
        "action-type": "PUSH",
        "image-tag": tag,
    }
    return EcrEvent(IMAGE_ACTION, ACCOUNT, "us-east-1", at, detail)


def tags_of(records: list[OutboxRecord]) -> list[str]:
    return [json.loads(record.document)["detail"]["image-tag"] for record in records]


class Boom(Exception):
    pass


async def test_events_exist_exactly_when_their_transaction_commits(store: MetadataStore) -> None:
    async with store.read() as tx:
        assert await tx.outbox.last_event_id() == 0
        assert await tx.outbox.events_after(0, 10) == []
    async with store.write() as tx:
        await tx.outbox.append_events([push("a"), push("b", at=1_700_000_001.5)])
    with pytest.raises(Boom):
        async with store.write() as tx:
            await tx.outbox.append_events([push("rolled-back")])
            raise Boom
    async with store.write() as tx:
        await tx.outbox.append_events([push("c")])
        await tx.outbox.append_events([])
    async with store.read() as tx:
        records = await tx.outbox.events_after(0, 10)
        assert tags_of(records) == ["a", "b", "c"]
        assert [r.id for r in records] == sorted(r.id for r in records)
        assert records[1].created_at == 1_700_000_001.5
        assert await tx.outbox.last_event_id() == records[-1].id
        assert tags_of(await tx.outbox.events_after(records[0].id, 1)) == ["b"]
        assert await tx.outbox.events_after(records[-1].id, 10) == []
        document = json.loads(records[0].document)
        assert document["source"] == "aws.ecr" and document["detail-type"] == IMAGE_ACTION
        assert document["time"] == "2023-11-14T22:13:20Z"
        columns = "SELECT account_id, repository_name, detail_type FROM event_outbox"
        row = (await tx.conn.execute(sa.text(columns))).first()
        assert row is not None and tuple(row) == (ACCOUNT, "web", IMAGE_ACTION)


async def test_cursors_move_by_compare_and_set(store: MetadataStore) -> None:
    async with store.write() as tx:
        assert await tx.outbox.get_cursor("hook") == 0
        assert await tx.outbox.advance_cursor("hook", 0, 5, 10.0)
        assert not await tx.outbox.advance_cursor("hook", 0, 6, 11.0)
        assert not await tx.outbox.advance_cursor("hook", 4, 6, 11.0)
        assert await tx.outbox.advance_cursor("hook", 5, 9, 12.0)
        assert await tx.outbox.get_cursor("hook") == 9
        assert await tx.outbox.advance_cursor("other", 0, 3, 12.0)
    async with store.read() as tx:
        assert await tx.outbox.cursors() == {"hook": 9, "other": 3}
    async with store.write() as tx:
        assert await tx.outbox.delete_cursor("other")
        assert not await tx.outbox.delete_cursor("other")
        # A cursor put back at 0 is moved from 0 again, row and all.
        assert await tx.outbox.advance_cursor("hook", 9, 0, 13.0)
        assert await tx.outbox.advance_cursor("hook", 0, 1, 14.0)
    async with store.read() as tx:
        assert await tx.outbox.cursors() == {"hook": 1}


async def test_two_deliverers_racing_from_zero_move_the_cursor_once(store: MetadataStore) -> None:
    results: list[bool] = []

    async def deliverer(new: int) -> None:
        async with store.write() as tx:
            results.append(await tx.outbox.advance_cursor("hook", 0, new, 1.0))

    async with anyio.create_task_group() as group:
        group.start_soon(deliverer, 4)
        group.start_soon(deliverer, 7)
    assert sorted(results) == [False, True]
    async with store.read() as tx:
        assert await tx.outbox.get_cursor("hook") in (4, 7)


async def test_pruning_never_brings_an_id_back(store: MetadataStore) -> None:
    async with store.write() as tx:
        await tx.outbox.append_events([push(str(n), at=100.0 + n) for n in range(6)])
    async with store.read() as tx:
        ids = [r.id for r in await tx.outbox.events_after(0, 10)]
    async with store.write() as tx:
        # Old enough but not yet passed by every cursor: only what both bounds allow goes.
        assert await tx.outbox.delete_events_before(104.0, ids[2]) == 3
        assert await tx.outbox.delete_events_through(ids[3]) == 1
    async with store.read() as tx:
        assert tags_of(await tx.outbox.events_after(0, 10)) == ["4", "5"]
    async with store.write() as tx:
        assert await tx.outbox.delete_events_through(ids[-1]) == 2
    async with store.write() as tx:
        await tx.outbox.append_events([push("later")])
    async with store.read() as tx:
        (record,) = await tx.outbox.events_after(0, 10)
        assert record.id > ids[-1]
        assert await tx.outbox.last_event_id() == record.id


async def test_a_later_writer_waits_for_an_earlier_one_to_commit(
    store: MetadataStore, db_url: str
) -> None:
    """Writer A has drawn its id and not committed; writer B appends meanwhile. A reader must
    see neither until A commits, then A's before B's. On PostgreSQL B waits for A's lock; on
    SQLite it waits for the one write transaction."""
    a_appended, a_may_commit = anyio.Event(), anyio.Event()

    async def writer_a() -> None:
        async with store.write() as tx:
            await tx.outbox.append_events([push("a")])
            a_appended.set()
            await a_may_commit.wait()

    async def writer_b() -> None:
        async with store.write() as tx:
            await tx.outbox.append_events([push("b")])

    async with anyio.create_task_group() as group:
        group.start_soon(writer_a)
        await wait_for_event(a_appended)
        group.start_soon(writer_b)
        if not database.is_sqlite(db_url):
            await wait_until_async(
                lambda: waiting_for_the_outbox_lock(store),
                message="writer B never queued for the outbox lock",
            )
        async with store.read() as tx:
            assert await tx.outbox.events_after(0, 10) == []
        a_may_commit.set()
    async with store.read() as tx:
        records = await tx.outbox.events_after(0, 10)
    assert tags_of(records) == ["a", "b"]
    assert records[0].id < records[1].id


async def waiting_for_the_outbox_lock(store: MetadataStore) -> bool:
    async with store.read() as tx:
        waiting = await tx.conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    return bool(waiting)


async def test_a_follower_never_skips_an_event_of_concurrent_writers(
    store: MetadataStore,
) -> None:
    """Twenty writers, each pausing a random number of turns of the event loop between its
    append and its commit, while a reader follows by cursor: everything committed is read, in
    ascending id order, and no id shows up below the cursor once it has passed."""
    rng = random.Random(15)
    done = anyio.Event()
    seen: list[int] = []

    async def writer(n: int) -> None:
        for _ in range(rng.randrange(5)):
            await anyio.lowlevel.checkpoint()
        async with store.write() as tx:
            await tx.outbox.append_events([push(f"{n}-{k}") for k in range(rng.randrange(1, 4))])
            for _ in range(rng.randrange(20)):
                await anyio.lowlevel.checkpoint()

    async def follow() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            async with store.read() as tx:
                records = await tx.outbox.events_after(cursor, 1000)
            if records:
                seen.extend(r.id for r in records)
                cursor = records[-1].id
            elif finished:
                return
            else:
                await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as outer:
        outer.start_soon(follow)
        async with anyio.create_task_group() as writers:
            for n in range(20):
                writers.start_soon(writer, n)
        done.set()
    async with store.read() as tx:
        committed = [r.id for r in await tx.outbox.events_after(0, 1000)]
    assert seen == committed
    assert seen == sorted(seen) and len(committed) >= 20
