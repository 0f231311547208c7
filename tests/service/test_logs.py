"""CloudWatch Logs' rules as the service keeps them: listings in pages of `limit` with
`nextToken`s, streams ordered by last event, a group named by name or ARN, FilterLogEvents in
pages that go on where the last one stopped, and bad tokens refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cargohold.metadata.store import MetadataStore
from cargohold.service import logs as logs_module
from cargohold.service.logs import InvalidParameter, LogsService, group_name, page_of

pytestmark = pytest.mark.anyio

ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture
def logs(store: MetadataStore, now: list[float]) -> LogsService:
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    return LogsService(store, clock)


def test_a_page_and_the_token_of_the_next() -> None:
    items = list(range(7))
    first = page_of(items, {"limit": 3})
    assert (first.items, first.next_token) == ([0, 1, 2], "3")
    last = page_of(items, {"limit": 3, "nextToken": "6"})
    assert (last.items, last.next_token) == ([6], None)
    assert page_of(items, {}).items == items
    for bad in ("x", "-1", "1" * 20):
        with pytest.raises(InvalidParameter, match="nextToken is invalid"):
            page_of(items, {"nextToken": bad})


def test_a_group_is_named_by_name_or_arn() -> None:
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/app"
    assert group_name(REGION, ACCOUNT, {"logGroupName": "/ecs/app"}) == "/ecs/app"
    assert group_name(REGION, ACCOUNT, {"logGroupIdentifier": arn}) == "/ecs/app"
    assert group_name(REGION, ACCOUNT, {"logGroupIdentifier": arn + ":*"}) == "/ecs/app"
    with pytest.raises(InvalidParameter, match="mutually exclusive"):
        group_name(REGION, ACCOUNT, {"logGroupName": "a", "logGroupIdentifier": arn})
    with pytest.raises(InvalidParameter, match="either logGroupName"):
        group_name(REGION, ACCOUNT, {})


async def test_streams_by_last_event_time(logs: LogsService, now: list[float]) -> None:
    await logs.create_group(ACCOUNT, "g", {})
    for name, at in (("a", 3000), ("b", 1000), ("c", 2000)):
        await logs.create_stream(ACCOUNT, "g", name)
        await logs.put(ACCOUNT, "g", name, [{"timestamp": at, "message": name}])
    by_name = await logs.streams(ACCOUNT, "g", {})
    assert [s.name for s in by_name.items] == ["a", "b", "c"]
    newest = await logs.streams(ACCOUNT, "g", {"orderBy": "LastEventTime", "descending": True})
    assert [s.name for s in newest.items] == ["a", "c", "b"]
    paged = await logs.streams(ACCOUNT, "g", {"orderBy": "LastEventTime", "limit": 2})
    assert ([s.name for s in paged.items], paged.next_token) == (["b", "c"], "2")


async def test_filtered_events_come_in_pages(logs: LogsService) -> None:
    await logs.create_group(ACCOUNT, "g", {})
    await logs.create_stream(ACCOUNT, "g", "s")
    lines = [{"timestamp": i, "message": f"{'error' if i % 2 else 'ok'} {i}"} for i in range(10)]
    await logs.put(ACCOUNT, "g", "s", lines)
    seen: list[str] = []
    params: dict[str, object] = {"filterPattern": "error", "limit": 2}
    pages = 0
    while True:
        page = await logs.filter_events(ACCOUNT, "g", params)
        pages += 1
        seen += [e.message for e in page.events]
        if page.next_token is None:
            break
        params["nextToken"] = page.next_token
    assert seen == [f"error {i}" for i in (1, 3, 5, 7, 9)]
    assert pages in (3, 4)
    everything = await logs.filter_events(ACCOUNT, "g", {})
    assert (len(everything.events), everything.next_token, everything.streams) == (10, None, ["s"])
    with pytest.raises(InvalidParameter, match="nextToken is invalid"):
        await logs.filter_events(ACCOUNT, "g", {"nextToken": "f/1"})


async def test_a_filter_reads_a_bounded_number_of_batches(
    logs: LogsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few matches among many events: a page stops after its batches, and its token goes on."""
    monkeypatch.setattr(logs_module, "MAX_EVENTS", 3)
    monkeypatch.setattr(logs_module, "FILTER_BATCHES", 2)
    await logs.create_group(ACCOUNT, "g", {})
    await logs.create_stream(ACCOUNT, "g", "s")
    lines = [{"timestamp": i, "message": "hit" if i == 8 else "miss"} for i in range(10)]
    await logs.put(ACCOUNT, "g", "s", lines)
    first = await logs.filter_events(ACCOUNT, "g", {"filterPattern": "hit"})
    assert first.events == [] and first.next_token is not None
    second = await logs.filter_events(
        ACCOUNT, "g", {"filterPattern": "hit", "nextToken": first.next_token}
    )
    assert [e.message for e in second.events] == ["hit"]
    assert second.next_token is None
