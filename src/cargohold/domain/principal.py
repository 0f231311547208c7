"""Who is calling: the authenticated principal every request is authorized as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: str
    arn: str
    principal_id: str
    access_key_id: str | None = None
    username: str | None = None
    session_token_id: str | None = None


def repository_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:ecr:{region}:{account_id}:repository/{name}"
