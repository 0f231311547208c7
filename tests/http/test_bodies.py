"""`GuardedBody`: a request body that stalls or trickles is cut off, and answered 408 in the
front's own error shape; time the server spends between reads is never held against the client.

The clock that measures waits is the test's own where the test needs it to move; the idle
timeout runs on the event loop's clock, with deadlines of a few hundredths of a second."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest

from cargohold.http.bodies import BodyLimits, BodyTimeout, GuardedBody, guarded

pytestmark = pytest.mark.anyio

Message = MutableMapping[str, Any]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Client:
    """The client side of one request: chunks to hand out, each after `wait` seconds of the
    fake clock; once they run out, either the body ends or the client stalls forever."""

    def __init__(
        self, chunks: list[bytes], *, clock: FakeClock, wait: float = 0.0, stall: bool = False
    ) -> None:
        self.chunks = list(chunks)
        self.clock = clock
        self.wait = wait
        self.stall = stall
        self.never = anyio.Event()
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if not self.chunks:
            if self.stall:
                await self.never.wait()
            return {"type": "http.disconnect"}
        self.clock.now += self.wait
        chunk = self.chunks.pop(0)
        more = bool(self.chunks) or self.stall
        return {"type": "http.request", "body": chunk, "more_body": more}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def status(self) -> int:
        return int(self.sent[0]["status"])

    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    def body(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


def scope(path: str = "/v2/app/blobs/uploads/u1", **headers: str) -> dict[str, Any]:
    headers.setdefault("content_length", "1048576")
    return {
        "type": "http",
        "method": "PATCH" if path.startswith("/v2/") else "POST",
        "path": path,
        "query_string": b"",
        "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()],
    }


async def read_all(guard: GuardedBody) -> bytes:
    data = b""
    while True:
        message = await guard.receive()
        data += message.get("body", b"")
        if not message.get("more_body", False):
            return data


async def answer_ok(guard: GuardedBody) -> None:
    await guard.send({"type": "http.response.start", "status": 202, "headers": []})
    await guard.send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_a_body_that_keeps_coming_is_passed_through() -> None:
    clock = FakeClock()
    client = Client([b"a" * 2048] * 50, clock=clock, wait=1.0)
    limits = BodyLimits(idle_timeout=60, min_rate=1024, grace=10)
    guard = GuardedBody(scope(), client.receive, client.send, limits, clock=clock)

    assert await read_all(guard) == b"a" * 2048 * 50
    await answer_ok(guard)

    assert guard.cut_off is None
    assert client.status() == 202
    assert client.sent[1]["body"] == b""


async def test_a_body_that_stops_is_cut_off_after_the_idle_timeout() -> None:
    clock = FakeClock()
    client = Client([b"first bytes"], clock=clock, stall=True)
    limits = BodyLimits(idle_timeout=0.05, min_rate=0, grace=10)
    guard = GuardedBody(scope(), client.receive, client.send, limits)

    with pytest.raises(BodyTimeout):
        await read_all(guard)
    # What the reader answers after giving up is replaced by the 408.
    await answer_ok(guard)

    assert guard.cut_off == "no request body byte for 0.05 s"
    assert client.status() == 408
    assert client.headers()[b"connection"] == b"close"
    assert client.body()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    assert len(client.sent) == 2


async def test_a_stalled_start_is_cut_off_by_the_rate_grace_before_the_idle_timeout() -> None:
    client = Client([b"x"], clock=FakeClock(), stall=True)
    limits = BodyLimits(idle_timeout=3600, min_rate=1024, grace=0.05)
    guard = GuardedBody(scope(), client.receive, client.send, limits)

    with anyio.fail_after(5):
        with pytest.raises(BodyTimeout):
            await read_all(guard)

    assert guard.cut_off is not None
    assert "below the minimum of 1024" in guard.cut_off


async def test_a_trickle_is_cut_off_once_below_the_minimum_rate() -> None:
    clock = FakeClock()
    # Ten bytes a second, for ever: no wait is idle for long, but the average is far too low.
    client = Client([b"0123456789"] * 1000, clock=clock, wait=1.0)
    limits = BodyLimits(idle_timeout=60, min_rate=100, grace=5)
    guard = GuardedBody(scope(), client.receive, client.send, limits, clock=clock)

    with pytest.raises(BodyTimeout):
        await read_all(guard)

    assert clock.now == 6.0
    assert guard.cut_off == "request body came at 10 bytes/s, below the minimum of 100"


async def test_time_the_server_spends_is_not_held_against_the_client() -> None:
    clock = FakeClock()
    client = Client([b"z" * 1000] * 20, clock=clock, wait=0.5)
    limits = BodyLimits(idle_timeout=60, min_rate=1000, grace=1)
    guard = GuardedBody(scope(), client.receive, client.send, limits, clock=clock)

    received = b""
    while True:
        message = await guard.receive()
        received += message["body"]
        if not message["more_body"]:
            break
        clock.now += 30.0  # the server writing and hashing what came, between reads

    assert received == b"z" * 20_000
    assert guard.cut_off is None


async def test_after_the_body_the_wait_for_a_disconnect_is_not_limited() -> None:
    clock = FakeClock()
    client = Client([b"whole body"], clock=clock)
    limits = BodyLimits(idle_timeout=0.01, min_rate=1024, grace=0)
    guard = GuardedBody(scope(), client.receive, client.send, limits, clock=clock)

    assert await read_all(guard) == b"whole body"
    client.stall = True
    with anyio.move_on_after(0.1) as waiting:
        await guard.receive()  # a streaming response listening for the client to go away

    assert waiting.cancelled_caught
    assert guard.cut_off is None


async def test_a_request_without_a_body_is_not_guarded() -> None:
    client = Client([b""], clock=FakeClock())
    limits = BodyLimits(idle_timeout=0.01, min_rate=1024, grace=0)
    no_body = {**scope("/v2/app/manifests/latest"), "method": "GET", "headers": []}
    guard = GuardedBody(no_body, client.receive, client.send, limits)

    assert await guard.receive() == {"type": "http.request", "body": b"", "more_body": False}
    client.stall = True
    with anyio.move_on_after(0.1) as waiting:
        await guard.receive()

    assert waiting.cancelled_caught
    assert guard.cut_off is None


@pytest.mark.parametrize(
    ("path", "headers", "content_type", "code"),
    [
        ("/v2/app/manifests/latest", {}, "application/json", "MANIFEST_INVALID"),
        (
            "/",
            {"x_amz_target": "AmazonEC2ContainerRegistry_V20150921.PutImage"},
            "application/x-amz-json-1.1",
            "RequestTimeoutException",
        ),
        (
            "/",
            {"content_type": "application/x-www-form-urlencoded"},
            "text/xml",
            "RequestTimeout",
        ),
    ],
)
async def test_the_408_speaks_the_front_s_language(
    path: str, headers: dict[str, str], content_type: str, code: str
) -> None:
    client = Client([b"{"], clock=FakeClock(), stall=True)
    limits = BodyLimits(idle_timeout=0.02, min_rate=0, grace=0)
    guard = GuardedBody(scope(path, **headers), client.receive, client.send, limits)

    with pytest.raises(BodyTimeout):
        await read_all(guard)
    await answer_ok(guard)

    assert client.status() == 408
    assert client.headers()[b"content-type"] == content_type.encode()
    body = client.sent[1]["body"]
    assert int(client.headers()[b"content-length"]) == len(body)
    if content_type == "text/xml":
        assert f"<Code>{code}</Code>".encode() in body
        assert client.headers()[b"x-amzn-requestid"]
    elif path == "/":
        assert json.loads(body)["__type"] == code
    else:
        assert json.loads(body)["errors"][0]["code"] == code


async def test_a_response_begun_before_the_cut_off_is_left_alone() -> None:
    client = Client([b"a"], clock=FakeClock(), stall=True)
    limits = BodyLimits(idle_timeout=0.02, min_rate=0, grace=0)
    guard = GuardedBody(scope(), client.receive, client.send, limits)

    await guard.send({"type": "http.response.start", "status": 200, "headers": []})
    with pytest.raises(BodyTimeout):
        await read_all(guard)
    await guard.send({"type": "http.response.body", "body": b"done", "more_body": False})

    assert [m.get("status", m.get("body")) for m in client.sent] == [200, b"done"]


def test_only_a_request_with_a_body_is_guarded() -> None:
    client = Client([], clock=FakeClock())
    limits = BodyLimits()
    get = {**scope(), "method": "GET", "headers": [(b"host", b"registry")]}
    empty = {**scope(), "headers": [(b"content-length", b"0")]}
    chunked = {**scope(), "headers": [(b"transfer-encoding", b"chunked")]}

    for bodiless in (get, empty):
        assert guarded(bodiless, client.receive, client.send, limits) == (
            client.receive,
            client.send,
        )
    for with_body in (scope(), chunked):
        receive, send = guarded(with_body, client.receive, client.send, limits)
        assert (receive, send) != (client.receive, client.send)
