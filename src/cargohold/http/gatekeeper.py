"""Access to `/v2/` while the registry has no identities: every caller is the account itself."""

from __future__ import annotations

from starlette.requests import Request

from cargohold.domain.principal import Principal


class OpenGatekeeper:
    def __init__(self, account_id: str) -> None:
        self._principal = Principal(
            account_id=account_id, arn=f"arn:aws:iam::{account_id}:root", principal_id=account_id
        )

    async def authenticate(self, request: Request) -> Principal:
        return self._principal

    async def authorize(self, principal: Principal, action: str, repository: str | None) -> None:
        return None

    def challenge(self) -> str:
        return 'Basic realm="cargohold",service="ecr.amazonaws.com"'
