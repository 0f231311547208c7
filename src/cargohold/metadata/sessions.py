"""STS sessions: assumed roles and session tokens."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cargohold.domain.identity import Session
from cargohold.metadata.schema import sessions
from cargohold.metadata.sql import SqlStore


def _session(row: Any) -> Session:
    return Session(
        id=row.id,
        principal_id=row.principal_id,
        account_id=row.account_id,
        kind=row.kind,
        arn=row.arn,
        user_id=row.user_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        session_name=row.session_name,
        role_arn=row.role_arn,
        source_arn=row.source_arn,
        chained=bool(row.chained),
    )


class SqlSessions(SqlStore):
    """STS sessions: assumed roles and session tokens."""

    async def insert_session(
        self,
        session: Session,
        *,
        secret_ciphertext: bytes,
        token_ciphertext: bytes,
        session_policy: str | None,
    ) -> None:
        await self.conn.execute(
            sa.insert(sessions).values(
                id=session.id,
                principal_id=session.principal_id,
                account_id=session.account_id,
                kind=session.kind,
                arn=session.arn,
                user_id=session.user_id,
                session_name=session.session_name,
                role_arn=session.role_arn,
                source_arn=session.source_arn,
                chained=session.chained,
                session_policy=session_policy,
                secret=secret_ciphertext,
                token=token_ciphertext,
                created_at=session.created_at,
                expires_at=session.expires_at,
            )
        )

    async def session(self, session_id: str) -> Session | None:
        row = (
            await self.conn.execute(sa.select(sessions).where(sessions.c.id == session_id))
        ).first()
        return _session(row) if row else None

    async def session_credential(
        self, session_id: str
    ) -> tuple[Session, bytes, bytes, str | None] | None:
        """The session, its secret's and token's ciphertexts, and its session policy."""
        row = (
            await self.conn.execute(sa.select(sessions).where(sessions.c.id == session_id))
        ).first()
        if row is None:
            return None
        return _session(row), bytes(row.secret), bytes(row.token), row.session_policy

    async def delete_expired_sessions(self, before: float) -> int:
        result = await self.conn.execute(sa.delete(sessions).where(sessions.c.expires_at < before))
        return int(result.rowcount or 0)
