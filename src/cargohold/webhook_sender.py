"""The HTTP client that delivers events to webhook targets (`service.event_delivery`).

One httpx client per process: connections to a target are kept alive between events. Redirects
are not followed (a target answers where it is configured), and a response body is never read
beyond what httpx needs to end the exchange. The proxy variables (`HTTPS_PROXY`, `NO_PROXY`, …)
apply as they do for other HTTP clients.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

USER_AGENT = "cargohold-events/1"


class HttpxSender:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT})

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], time_limit: float
    ) -> int:
        response = await self._client.post(
            url, content=body, headers=dict(headers), timeout=time_limit
        )
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()
