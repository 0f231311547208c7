"""The HTTP client that delivers events to webhook targets (`service.event_delivery`).

One httpx client per process: connections to a target are kept alive between events. Redirects
are not followed (a target answers where it is configured: a 3xx is not a delivery), and at most
`MAX_ANSWER_BYTES` of an answer's body are read (the status is all that counts), so a receiver
cannot fill the server's memory. The proxy variables (`HTTPS_PROXY`, `NO_PROXY`, …)
apply as they do for other HTTP clients.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

USER_AGENT = "cargohold-events/1"
MAX_ANSWER_BYTES = 65536


class HttpxSender:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT})

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], time_limit: float
    ) -> int:
        request = self._client.build_request(
            "POST", url, content=body, headers=dict(headers), timeout=time_limit
        )
        response = await self._client.send(request, stream=True)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > MAX_ANSWER_BYTES:
                    break
        finally:
            await response.aclose()
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()
