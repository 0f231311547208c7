"""SigV4 authentication for the AWS API fronts (ECR now; STS and IAM share it).

The signature itself is checked by `cargohold.auth.sigv4` (botocore's signer computes the
expected value); this module finds the caller's secret and principal in the identity store.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request

from cargohold.auth import sigv4
from cargohold.auth.errors import UnrecognizedClient
from cargohold.domain.principal import Principal

_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")
_QUERY_CREDENTIAL = re.compile(r"(?:^|&)X-Amz-Credential=([A-Za-z0-9]+)(?:/|%2F)")

SecretLookup = Callable[[str], Awaitable[str | None]]
PrincipalLookup = Callable[[str], Awaitable[Principal | None]]


def claimed_access_key(request: Request) -> str | None:
    """The access key id a request says it is signed with, before anything is verified."""
    match = _CREDENTIAL.search(request.headers.get("authorization", ""))
    if match is None:
        match = _QUERY_CREDENTIAL.search(request.scope.get("query_string", b"").decode("latin-1"))
    return match.group(1) if match else None


class SigV4Authenticator:
    def __init__(
        self,
        lookup_secret: SecretLookup,
        lookup_principal: PrincipalLookup,
        *,
        service: str,
        clock: Callable[[], float],
    ) -> None:
        self._lookup_secret = lookup_secret
        self._lookup_principal = lookup_principal
        self._service = service
        self._clock = clock

    async def authenticate(self, request: Request, body: bytes) -> Principal:
        access_key = claimed_access_key(request)
        secret = await self._lookup_secret(access_key) if access_key else None
        signed = sigv4.SignedRequest(
            method=request.method,
            path=request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
            query_string=request.scope.get("query_string", b"").decode("latin-1"),
            headers=request.headers,
            body=body,
        )
        caller = sigv4.verify(
            signed,
            lambda key: secret if key == access_key else None,
            now=datetime.fromtimestamp(self._clock(), UTC),
            service=self._service,
        )
        principal = await self._lookup_principal(caller.access_key_id)
        if principal is None:
            raise UnrecognizedClient()
        return principal
