"""What appending an event costs a write transaction on PostgreSQL: the outbox's lock is held
from the append to the commit, so appending transactions commit one at a time.

    .venv/bin/python bench/outbox.py             # --writers 8 --each 150 --rounds 4

Each of `--writers` tasks runs `--each` write transactions that update a row of their own (a
delivery cursor), with and without one appended event, in alternating rounds, in a schema of
its own on `--url` (dropped afterwards). Prints transactions per second for each round.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

import psycopg

from cargohold.domain.ecrevents import PUSH, image_action
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.ports import Changes

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def rate(store: MetadataStore, *, append: bool, writers: int, each: int) -> float:
    """Committed transactions per second of `writers` concurrent tasks."""

    async def writer(n: int) -> None:
        for i in range(each):
            async with store.write(changes=Changes.NOTHING) as tx:
                await tx.outbox.advance_cursor(f"writer-{n}", i, i + 1, 0.0)
                if append:
                    event = image_action(
                        PUSH,
                        account="123456789012",
                        region="us-east-1",
                        repository="bench",
                        digest="sha256:" + "0" * 64,
                        tag=f"{n}-{i}",
                        now=time.time(),
                    )
                    await tx.outbox.append_events([event])

    async with store.write() as tx:
        for n in range(writers):
            await tx.outbox.delete_cursor(f"writer-{n}")
    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(writers)))
    return writers * each / (time.perf_counter() - started)


async def measure(url: str, *, writers: int, each: int, rounds: int) -> list[tuple[bool, float]]:
    """(appended, transactions per second) of each round, on an upgraded database at `url`."""
    database.upgrade(url)
    store = MetadataStore.from_url(url)
    try:
        found = []
        for append in [False, True] * rounds:
            found.append((append, await rate(store, append=append, writers=writers, each=each)))
        return found
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=POSTGRES_URL, help=f"PostgreSQL (default {POSTGRES_URL})")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers (default 8)")
    parser.add_argument("--each", type=int, default=150, help="transactions each (default 150)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each kind (default 4)")
    args = parser.parse_args()
    schema = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = f"{args.url}?options=-csearch_path%3D{schema}"
        found = asyncio.run(measure(url, writers=args.writers, each=args.each, rounds=args.rounds))
        for append, per_second in found:
            print(f"{'with an event' if append else 'no event':>14}  {per_second:8.0f} tx/s")
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
