"""bench/outbox.py runs: rounds with and without an appended event, the events all written."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from cargohold.metadata.store import MetadataStore

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.anyio


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_outbox", REPO / "bench" / "outbox.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_outbox_benchmark_runs(postgres_url: str) -> None:
    found = await bench_module().measure(postgres_url, writers=2, each=3, rounds=1)
    assert [append for append, _ in found] == [False, True]
    assert all(per_second > 0 for _, per_second in found)
    store = MetadataStore.from_url(postgres_url)
    try:
        async with store.read() as tx:
            assert len(await tx.outbox.events_after(0, 100)) == 6
    finally:
        await store.close()
