"""The fuzz harness itself: what it generates reaches each protocol's shape, and every answer of
500 or more, or none at all, is kept with the request that caused it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cargohold.http.awsservice import service_model
from support.fuzzing import (
    Fuzzer,
    FuzzRequest,
    Known,
    Principal,
    ShapeValues,
    aws_requests,
    exceptions_in,
    run_examples,
    v2_requests,
)

KNOWN = Known(
    values={"repositoryname": ["fuzz/app"], "username": ["fuzz-target"]},
    repositories=["fuzz/app"],
    tags=["v1"],
    digests=["sha256:" + "1" * 64],
    manifests=[b"{}"],
    token="secret-token",
)
ADMIN = Principal("admin", "AKIAFUZZFUZZFUZZFUZZ", "not-shown")


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        status = 500 if self.path.startswith("/boom") else 200
        self.send_response(status)
        self.send_header("content-length", "4")
        self.end_headers()
        self.wfile.write(b"oops")

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_500_is_kept_with_its_request_and_without_credentials(url: str) -> None:
    request = FuzzRequest(
        label="ecr:PutImage",
        method="POST",
        path="/boom",
        headers=(("Content-Type", "application/x-amz-json-1.1"),),
        body=b'{"repositoryName": "x"}',
        signer="admin",
        service="ecr",
    )
    with Fuzzer(url, [ADMIN]) as fuzzer:
        assert fuzzer.send(request) == 500
        assert fuzzer.send(FuzzRequest(label="GET /v2/", method="GET", path="/v2/")) == 200
    tally = fuzzer.tally
    assert (tally.requests, tally.server_errors) == (2, 1)
    failure = tally.failures[0]
    assert (failure.label, failure.method, failure.path, failure.status) == (
        "ecr:PutImage",
        "POST",
        "/boom",
        500,
    )
    assert failure.request_body == '{"repositoryName": "x"}'
    assert failure.answer == "oops"
    assert "Authorization" not in failure.request_headers
    assert failure.request_headers["Content-Type"] == "application/x-amz-json-1.1"
    assert "not-shown" not in json.dumps(tally.to_json())
    assert tally.labels["ecr:PutImage"][500] == 1


def test_a_request_left_unanswered_counts_as_a_failure() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections queue; nothing ever answers
        port = silent.getsockname()[1]
        with Fuzzer(f"http://127.0.0.1:{port}", [ADMIN], timeout=0.3) as fuzzer:
            status = fuzzer.send(FuzzRequest(label="GET /v2/", method="GET", path="/v2/"))
    assert status == 0
    assert fuzzer.tally.server_errors == 1
    assert "Timeout" in fuzzer.tally.failures[0].answer


def test_aws_calls_take_each_protocols_shape() -> None:
    values = ShapeValues(KNOWN)
    ecr: list[FuzzRequest] = []
    iam: list[FuzzRequest] = []
    run_examples(
        aws_requests(service_model("ecr"), "ListImages", values, ["admin"]), 40, ecr.append, seed_=1
    )
    run_examples(
        aws_requests(service_model("iam"), "GetUser", values, ["nobody"]), 40, iam.append, seed_=1
    )
    assert len(ecr) == len(iam) == 40
    target = ("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.ListImages")
    assert all(target in r.headers and r.service == "ecr" for r in ecr)
    assert {"label": "ecr:ListImages", "signer": "admin"}.items() <= vars(ecr[0]).items()
    # Valid calls name what exists; others are broken in every way the generator knows.
    assert b'{"repositoryName":"fuzz/app"}' in {r.body for r in ecr}
    assert any(not r.body.startswith(b"{") for r in ecr)
    assert all(r.body.startswith(b"Action=GetUser&Version=2010-05-08") for r in iam)
    assert any(b"UserName=fuzz-target" in r.body for r in iam)


def test_v2_requests_carry_the_token_or_not() -> None:
    drawn: list[FuzzRequest] = []
    run_examples(v2_requests(KNOWN), 1000, drawn.append, seed_=1)
    assert all(r.path.startswith(("/v2/", "/_download/")) for r in drawn)
    assert any(r.path.startswith("/_download/") for r in drawn)
    authorizations = {dict(r.headers).get("Authorization", "") for r in drawn}
    assert any(a.startswith("Basic ") for a in authorizations)
    assert "" in authorizations
    assert {r.method for r in drawn} >= {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"}
    assert any("/blobs/uploads/" in r.path for r in drawn)


def test_exceptions_are_read_from_the_servers_log() -> None:
    log = "\n".join(
        [
            "INFO ok",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in f',
            "RecursionError: maximum recursion depth exceeded",
            "Traceback (most recent call last):",
            '  File "y.py", line 2, in g',
            "ValueError: invalid literal for int() with base 10: '²'",
        ]
    )
    assert dict(exceptions_in(log)) == {
        "RecursionError: maximum recursion depth exceeded": 1,
        "ValueError: invalid literal for int() with base 10: '²'": 1,
    }
