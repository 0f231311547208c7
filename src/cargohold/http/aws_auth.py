"""SigV4 authentication for the AWS API fronts (ECR, STS, IAM).

The signature itself is checked by `cargohold.auth.sigv4` (botocore's signer computes the
expected value); this module finds the caller's secret and principal in the identity store:
a long-term access key (`AKIA…`), or STS temporary credentials (`ASIA…`) with the session token
the request carries (`X-Amz-Security-Token`, as a header or, presigned, in the query). A
session token that is missing or wrong is an unrecognized client; an expired one is
`ExpiredToken`.

A credential must be scoped to the service called and to the registry's region; IAM and STS
also accept `us-east-1`, the region their global endpoints are signed for. An AWS JSON call must
sign `X-Amz-Target`, which names its operation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import unquote

from starlette.requests import Request

from cargohold.auth import sigv4
from cargohold.auth.errors import UnrecognizedClient
from cargohold.domain.principal import Principal
from cargohold.service.credentials import KeyCredential

_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")
_QUERY_CREDENTIAL = re.compile(r"(?:^|&)X-Amz-Credential=([A-Za-z0-9]+)(?:/|%2F)")
_QUERY_TOKEN = re.compile(r"(?:^|&)X-Amz-Security-Token=([^&]*)")
_SCOPE_SERVICE = re.compile(r"Credential=[A-Za-z0-9]+/\d{8}/[^/]+/([a-z0-9-]+)/")
#: Services AWS serves from one global endpoint, and the region that endpoint is signed for.
GLOBAL_REGIONS = {"iam": "us-east-1", "sts": "us-east-1"}
#: Headers that choose what a call does, and so must be signed when sent.
MUST_SIGN = ("x-amz-target",)


class CredentialResolver(Protocol):
    """The identity store as SigV4 sees it (`cargohold.service.authentication.Authentication`)."""

    async def resolve_credential(
        self, access_key_id: str, session_token: str | None
    ) -> KeyCredential | None: ...

    async def record_use(self, credential: KeyCredential, service: str, region: str) -> None: ...


def claimed_access_key(request: Request) -> str | None:
    """The access key id a request says it is signed with, before anything is verified."""
    match = _CREDENTIAL.search(request.headers.get("authorization", ""))
    if match is None:
        match = _QUERY_CREDENTIAL.search(request.scope.get("query_string", b"").decode("latin-1"))
    return match.group(1) if match else None


def claimed_session_token(request: Request) -> str | None:
    """The session token a request carries, if any (header form, else presigned query)."""
    token = request.headers.get("x-amz-security-token")
    if token is not None:
        return token
    match = _QUERY_TOKEN.search(request.scope.get("query_string", b"").decode("latin-1"))
    return unquote(match.group(1)) if match else None


def claimed_service(request: Request) -> str | None:
    """The service a SigV4 header names in its credential scope (`…/us-east-1/sts/…`)."""
    match = _SCOPE_SERVICE.search(request.headers.get("authorization", ""))
    if match is None:
        query = unquote(request.scope.get("query_string", b"").decode("latin-1"))
        match = _SCOPE_SERVICE.search(query.replace("X-Amz-Credential=", "Credential="))
    return match.group(1) if match else None


class SigV4Authenticator:
    """The `Authenticator` of `cargohold.http.awsfront`."""

    def __init__(
        self, credentials: CredentialResolver, *, clock: Callable[[], float], region: str
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._region = region

    def regions(self, service: str) -> frozenset[str]:
        """The regions a credential scoped to `service` may name."""
        extra = GLOBAL_REGIONS.get(service)
        return frozenset({self._region} if extra is None else {self._region, extra})

    async def authenticate(self, request: Request, body: bytes, *, service: str) -> Principal:
        """Who signed the request, with a credential scoped to `service` (`ecr`, `sts`, `iam`).
        Raises AuthError: UnrecognizedClient for an unknown or
        inactive key or a wrong session token, ExpiredToken for expired temporary
        credentials, the signature errors of `sigv4.verify` otherwise."""
        access_key = claimed_access_key(request)
        credential = None
        if access_key:
            token = claimed_session_token(request)
            credential = await self._credentials.resolve_credential(access_key, token)
        signed = sigv4.SignedRequest(
            method=request.method,
            path=request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
            query_string=request.scope.get("query_string", b"").decode("latin-1"),
            headers=request.headers,
            body=body,
        )
        caller = sigv4.verify(
            signed,
            lambda key: credential.secret if credential and key == access_key else None,
            now=datetime.fromtimestamp(self._clock(), UTC),
            service=service,
            region=self.regions(service),
            must_sign=MUST_SIGN,
        )
        if credential is None:
            raise UnrecognizedClient()
        await self._credentials.record_use(credential, caller.service, caller.region)
        return credential.principal
