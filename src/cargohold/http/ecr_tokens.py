"""GetAuthorizationToken: the `/v2/` password `aws ecr get-login-password` prints."""

from __future__ import annotations

from typing import Any

from cargohold.http.ecr import EcrCall, Handler
from cargohold.service.identity import IdentityService


def token_handlers(identity: IdentityService, *, public_url: str) -> dict[str, Handler]:
    async def get_authorization_token(call: EcrCall) -> dict[str, Any]:
        token, expires_at = identity.issue_authorization_token(call.principal)
        # One entry per registry asked for (the parameter is deprecated but still honoured).
        registries = call.params.get("registryIds") or [call.principal.account_id]
        return {
            "authorizationData": [
                {"authorizationToken": token, "expiresAt": expires_at, "proxyEndpoint": public_url}
                for _ in registries
            ]
        }

    return {"GetAuthorizationToken": get_authorization_token}
