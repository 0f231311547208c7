"""A push hook for race tests: it holds a push's transaction open, inside, until released."""

from __future__ import annotations

import asyncio
from typing import Any


class PausedPush:
    """`inside` is set once a push reached the hook; the push goes on when `release` is set."""

    def __init__(self) -> None:
        self.inside = asyncio.Event()
        self.release = asyncio.Event()

    async def manifest_pushed(self, tx: Any, repository: Any, manifest_id: int, *rest: Any) -> bool:
        self.inside.set()
        await self.release.wait()
        return False

    def pushed(self) -> None:
        pass
