"""GetAuthorizationToken: the `/v2/` password `aws ecr get-login-password` prints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cargohold.http.ecr import EcrCall, Handler
from cargohold.http.hosts import account_host, registry_host
from cargohold.service.authentication import Authentication


def token_handlers(
    authentication: Authentication, *, public_url: str, account_id: str | None = None
) -> dict[str, Handler]:
    """`proxyEndpoint` is the registry's URL; for an account other than `account_id` (the
    server's own), that account's host (`cargohold.http.hosts`)."""
    scheme = urlsplit(public_url).scheme or "http"
    host = registry_host(public_url)

    def endpoint(registry_id: str) -> str:
        if account_id is None:
            return public_url
        return f"{scheme}://{account_host(host, registry_id, primary_account=account_id)}"

    async def get_authorization_token(call: EcrCall) -> dict[str, Any]:
        token, expires_at = authentication.issue_authorization_token(call.principal)
        # One entry per registry asked for (the parameter is deprecated but still honoured);
        # the token is the caller's, good for any registry its policies let it into.
        registries = call.params.get("registryIds") or [call.principal.account_id]
        return {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": expires_at,
                    "proxyEndpoint": endpoint(registry_id),
                }
                for registry_id in registries
            ]
        }

    return {"GetAuthorizationToken": get_authorization_token}
