"""A clock that moves on one second each time it is read, for ordered timestamps."""

from __future__ import annotations


class Clock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now
