"""The HTTP client of event delivery against a real receiver on loopback."""

from __future__ import annotations

import httpx
import pytest

from cargohold.webhook_sender import USER_AGENT, HttpxSender
from support.webhooks import WebhookReceiver

pytestmark = pytest.mark.anyio


async def test_posts_the_body_and_headers_and_returns_the_status() -> None:
    receiver = WebhookReceiver().start()
    sender = HttpxSender()
    try:
        status = await sender.post(receiver.url, b'{"id":"1"}', {"X-Cargohold-Event-Id": "1"}, 5.0)
        assert status == 200
        receiver.status = 302  # not followed: not a delivery
        assert await sender.post(receiver.url, b"{}", {}, 5.0) == 302
        receiver.status = 503
        assert await sender.post(receiver.url, b"{}", {}, 5.0) == 503
    finally:
        await sender.close()
        receiver.stop()
    first = receiver.requests[0]
    assert first.body == b'{"id":"1"}'
    assert first.headers["X-Cargohold-Event-Id"] == "1"
    assert first.headers["User-Agent"] == USER_AGENT
    assert [d.body for d in receiver.accepted] == [b'{"id":"1"}']


async def test_nothing_listening_is_an_error() -> None:
    receiver = WebhookReceiver()  # never started
    sender = HttpxSender()
    try:
        with pytest.raises(httpx.TransportError):
            await sender.post(receiver.url, b"{}", {}, 5.0)
    finally:
        await sender.close()
