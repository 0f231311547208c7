"""Waiting for something another thread, task or process does, by polling it with a deadline.

Tests never sleep to order events: they wait for an event the code signals, or poll the state
they need with `wait_until` (or `wait_until_async` inside an event loop), which fails with a
message saying what never happened once the deadline has passed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import anyio

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 0.05


class NeverHappened(AssertionError):
    """What a test waited for did not happen before its deadline."""


def _describe(message: str | Callable[[], str]) -> str:
    return message() if callable(message) else message


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    message: str | Callable[[], str] = "the condition never held",
) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy, and return
    that; past `timeout` seconds fail with `message` (a string, or a function making one)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise NeverHappened(f"{_describe(message)} (waited {timeout}s)")
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], Awaitable[T]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    message: str | Callable[[], str] = "the condition never held",
) -> T:
    """`wait_until` for a coroutine predicate, polled without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise NeverHappened(f"{_describe(message)} (waited {timeout}s)")
        await anyio.sleep(interval)


class _Awaitable(Protocol):
    def wait(self) -> Awaitable[Any]: ...


async def wait_for_event(
    event: _Awaitable,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    message: str | Callable[[], str] = "the event never happened",
) -> None:
    """Wait for an `asyncio.Event` or `anyio.Event` (anything with `wait()`), failing with
    `message` past `timeout` seconds."""
    with anyio.move_on_after(timeout):
        await event.wait()
        return
    raise NeverHappened(f"{_describe(message)} (waited {timeout}s)")
