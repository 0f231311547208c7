"""Principals (users, roles) and their access keys."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cargohold.domain.identity import (
    AccessKey,
    AccessKeyStatus,
    Identity,
    PrincipalKind,
    name_key,
)
from cargohold.metadata.schema import access_keys, principals
from cargohold.metadata.sql import SqlStore


def _identity(row: Any) -> Identity:
    return Identity(
        id=row.id,
        account_id=row.account_id,
        kind=row.kind,
        name=row.name,
        path=row.path,
        arn=row.arn,
        created_at=row.created_at,
    )


def _access_key(row: Any) -> AccessKey:
    return AccessKey(
        id=row.id,
        principal_id=row.principal_id,
        user_name=row.user_name,
        status=row.status,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        last_used_service=row.last_used_service,
        last_used_region=row.last_used_region,
    )


_KEY_COLUMNS = (
    access_keys.c.id,
    access_keys.c.principal_id,
    principals.c.name.label("user_name"),
    access_keys.c.status,
    access_keys.c.created_at,
    access_keys.c.last_used_at,
    access_keys.c.last_used_service,
    access_keys.c.last_used_region,
)


_KEYS = access_keys.join(principals, access_keys.c.principal_id == principals.c.id)


class SqlIdentities(SqlStore):
    """Principals (users, roles) and their access keys."""

    async def insert_principal(self, identity: Identity) -> bool:
        """Insert unless the name (in any case), the id or the ARN is taken; whether it was."""
        # Any conflict (id, ARN, or the name in any case) means the principal exists already.
        stmt = (
            self._insert(principals)
            .values(
                id=identity.id,
                account_id=identity.account_id,
                kind=identity.kind,
                name=identity.name,
                name_key=name_key(identity.name),
                path=identity.path,
                arn=identity.arn,
                created_at=identity.created_at,
            )
            .on_conflict_do_nothing()
            .returning(principals.c.id)
        )
        # RETURNING says whether a row went in; on PostgreSQL rowcount did not, for this statement.
        return (await self.conn.execute(stmt)).first() is not None

    async def principal_by_name(
        self, account_id: str, kind: PrincipalKind, name: str, *, for_update: bool = False
    ) -> Identity | None:
        """The principal, locked against concurrent key changes when `for_update`."""
        query = sa.select(principals).where(
            principals.c.account_id == account_id,
            principals.c.kind == kind,
            principals.c.name_key == name_key(name),
        )
        if for_update:
            # A no-op on SQLite, whose write transactions already hold the database lock.
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _identity(row) if row else None

    async def principal(self, principal_id: str) -> Identity | None:
        row = (
            await self.conn.execute(sa.select(principals).where(principals.c.id == principal_id))
        ).first()
        return _identity(row) if row else None

    async def list_principals(self, account_id: str, kind: PrincipalKind) -> list[Identity]:
        rows = await self.conn.execute(
            sa.select(principals)
            .where(principals.c.account_id == account_id, principals.c.kind == kind)
            .order_by(principals.c.name_key, principals.c.name)
        )
        return [_identity(row) for row in rows]

    async def delete_principal(self, principal_id: str) -> bool:
        """Deletes the principal and, by cascade, its access keys."""
        result = await self.conn.execute(
            sa.delete(principals).where(principals.c.id == principal_id)
        )
        return bool(result.rowcount)

    async def insert_access_key(
        self,
        *,
        key_id: str,
        principal_id: str,
        secret_ciphertext: bytes,
        status: AccessKeyStatus,
        now: float,
    ) -> None:
        await self.conn.execute(
            sa.insert(access_keys).values(
                id=key_id,
                principal_id=principal_id,
                secret=secret_ciphertext,
                status=status,
                created_at=now,
            )
        )

    async def access_key(self, key_id: str) -> AccessKey | None:
        row = (
            await self.conn.execute(
                sa.select(*_KEY_COLUMNS).select_from(_KEYS).where(access_keys.c.id == key_id)
            )
        ).first()
        return _access_key(row) if row else None

    async def access_key_credential(self, key_id: str) -> tuple[AccessKey, Identity, bytes] | None:
        """The key, its principal and its secret's ciphertext, in one query."""
        row = (
            await self.conn.execute(
                sa.select(
                    *_KEY_COLUMNS,
                    access_keys.c.secret.label("secret"),
                    *(column.label(f"p_{column.name}") for column in principals.c),
                )
                .select_from(_KEYS)
                .where(access_keys.c.id == key_id)
            )
        ).first()
        if row is None:
            return None
        owner = Identity(
            id=row.p_id,
            account_id=row.p_account_id,
            kind=row.p_kind,
            name=row.p_name,
            path=row.p_path,
            arn=row.p_arn,
            created_at=row.p_created_at,
        )
        return _access_key(row), owner, bytes(row.secret)

    async def access_keys_of(self, principal_id: str) -> list[AccessKey]:
        rows = await self.conn.execute(
            sa.select(*_KEY_COLUMNS)
            .select_from(_KEYS)
            .where(access_keys.c.principal_id == principal_id)
            .order_by(access_keys.c.created_at, access_keys.c.id)
        )
        return [_access_key(row) for row in rows]

    async def access_keys_in(self, account_id: str) -> list[AccessKey]:
        rows = await self.conn.execute(
            sa.select(*_KEY_COLUMNS)
            .select_from(_KEYS)
            .where(principals.c.account_id == account_id)
            .order_by(principals.c.name_key, access_keys.c.created_at, access_keys.c.id)
        )
        return [_access_key(row) for row in rows]

    async def access_key_secret(self, key_id: str) -> bytes | None:
        row = (
            await self.conn.execute(
                sa.select(access_keys.c.secret).where(access_keys.c.id == key_id)
            )
        ).first()
        return bytes(row.secret) if row else None

    async def set_access_key_status(self, key_id: str, status: AccessKeyStatus) -> bool:
        result = await self.conn.execute(
            sa.update(access_keys).where(access_keys.c.id == key_id).values(status=status)
        )
        return bool(result.rowcount)

    async def delete_access_key(self, key_id: str) -> bool:
        result = await self.conn.execute(sa.delete(access_keys).where(access_keys.c.id == key_id))
        return bool(result.rowcount)

    async def record_key_use(self, key_id: str, now: float, service: str, region: str) -> None:
        await self.conn.execute(
            sa.update(access_keys)
            .where(access_keys.c.id == key_id)
            .values(last_used_at=now, last_used_service=service, last_used_region=region)
        )
