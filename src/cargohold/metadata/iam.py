"""IAM roles, groups and group membership."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cargohold.domain.identity import (
    GROUP,
    ROLE,
    Entity,
    Group,
    Identity,
    Role,
    name_key,
)
from cargohold.metadata.schema import (
    access_keys,
    group_members,
    iam_groups,
    inline_policies,
    policy_attachments,
    principals,
    roles,
)
from cargohold.metadata.sql import SqlStore


def identity_row(row: Any, prefix: str = "") -> Identity:
    return Identity(
        id=getattr(row, f"{prefix}id"),
        account_id=getattr(row, f"{prefix}account_id"),
        kind=getattr(row, f"{prefix}kind"),
        name=getattr(row, f"{prefix}name"),
        path=getattr(row, f"{prefix}path"),
        arn=getattr(row, f"{prefix}arn"),
        created_at=getattr(row, f"{prefix}created_at"),
    )


def role_row(row: Any) -> Role:
    return Role(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        path=row.path,
        arn=row.arn,
        created_at=row.created_at,
        trust_policy=row.trust_policy,
        description=row.description,
        max_session_duration=row.max_session_duration,
    )


def group_row(row: Any) -> Group:
    return Group(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        path=row.path,
        arn=row.arn,
        created_at=row.created_at,
    )


_ROLES = principals.join(roles, roles.c.principal_id == principals.c.id)


class SqlIam(SqlStore):
    """IAM roles, groups and group membership."""

    async def insert_role_details(
        self, principal_id: str, trust_policy: str, description: str | None, max_session: int
    ) -> None:
        """The role's own columns, for a `principals` row of kind role inserted just before."""
        await self.conn.execute(
            sa.insert(roles).values(
                principal_id=principal_id,
                trust_policy=trust_policy,
                description=description,
                max_session_duration=max_session,
            )
        )

    async def role_by_name(
        self, account_id: str, name: str, *, for_update: bool = False
    ) -> Role | None:
        query = (
            sa.select(principals, roles)
            .select_from(_ROLES)
            .where(
                principals.c.account_id == account_id,
                principals.c.kind == ROLE,
                principals.c.name_key == name_key(name),
            )
        )
        if for_update:
            query = query.with_for_update(of=principals)
        row = (await self.conn.execute(query)).first()
        return role_row(row) if row else None

    async def role(self, principal_id: str) -> Role | None:
        row = (
            await self.conn.execute(
                sa.select(principals, roles)
                .select_from(_ROLES)
                .where(principals.c.id == principal_id)
            )
        ).first()
        return role_row(row) if row else None

    async def role_by_arn(self, arn: str) -> Role | None:
        row = (
            await self.conn.execute(
                sa.select(principals, roles).select_from(_ROLES).where(principals.c.arn == arn)
            )
        ).first()
        return role_row(row) if row else None

    async def list_roles(self, account_id: str) -> list[Role]:
        rows = await self.conn.execute(
            sa.select(principals, roles)
            .select_from(_ROLES)
            .where(principals.c.account_id == account_id, principals.c.kind == ROLE)
            .order_by(principals.c.name_key, principals.c.name)
        )
        return [role_row(row) for row in rows]

    async def update_role(self, principal_id: str, **values: Any) -> None:
        await self.conn.execute(
            sa.update(roles).where(roles.c.principal_id == principal_id).values(**values)
        )

    async def principal_exists(self, arn: str) -> bool:
        row = (
            await self.conn.execute(sa.select(principals.c.id).where(principals.c.arn == arn))
        ).first()
        return row is not None

    async def insert_group(self, group: Group) -> bool:
        """Insert unless the name (in any case) or the ARN is taken; whether it was."""
        stmt = (
            self._insert(iam_groups)
            .values(
                id=group.id,
                account_id=group.account_id,
                name=group.name,
                name_key=name_key(group.name),
                path=group.path,
                arn=group.arn,
                created_at=group.created_at,
            )
            .on_conflict_do_nothing()
            .returning(iam_groups.c.id)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def group_by_name(
        self, account_id: str, name: str, *, for_update: bool = False
    ) -> Group | None:
        query = sa.select(iam_groups).where(
            iam_groups.c.account_id == account_id, iam_groups.c.name_key == name_key(name)
        )
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return group_row(row) if row else None

    async def list_groups(self, account_id: str) -> list[Group]:
        rows = await self.conn.execute(
            sa.select(iam_groups)
            .where(iam_groups.c.account_id == account_id)
            .order_by(iam_groups.c.name_key, iam_groups.c.name)
        )
        return [group_row(row) for row in rows]

    async def delete_group(self, group_id: str) -> None:
        await self.conn.execute(sa.delete(iam_groups).where(iam_groups.c.id == group_id))

    async def add_member(self, group_id: str, principal_id: str, now: float) -> None:
        await self.conn.execute(
            self._insert(group_members)
            .values(group_id=group_id, principal_id=principal_id, added_at=now)
            .on_conflict_do_nothing()
        )

    async def remove_member(self, group_id: str, principal_id: str) -> bool:
        result = await self.conn.execute(
            sa.delete(group_members).where(
                group_members.c.group_id == group_id,
                group_members.c.principal_id == principal_id,
            )
        )
        return bool(result.rowcount)

    async def members(self, group_id: str) -> list[Identity]:
        rows = await self.conn.execute(
            sa.select(principals)
            .join(group_members, group_members.c.principal_id == principals.c.id)
            .where(group_members.c.group_id == group_id)
            .order_by(principals.c.name_key)
        )
        return [identity_row(row) for row in rows]

    async def groups_of(self, principal_id: str) -> list[Group]:
        rows = await self.conn.execute(
            sa.select(iam_groups)
            .join(group_members, group_members.c.group_id == iam_groups.c.id)
            .where(group_members.c.principal_id == principal_id)
            .order_by(iam_groups.c.name_key)
        )
        return [group_row(row) for row in rows]

    async def dependents(self, entity: Entity) -> dict[str, int]:
        """What stops an entity's deletion: counts of its access keys, inline policies,
        attached policies, groups (a user's) and members (a group's)."""
        counts: dict[str, int] = {}

        async def count(name: str, table: sa.Table, column: str) -> None:
            counts[name] = (
                await self.conn.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c[column] == entity.id)
                )
            ).scalar_one()

        await count("inline", inline_policies, entity.column)
        await count("attached", policy_attachments, entity.column)
        if entity.kind == GROUP:
            await count("members", group_members, "group_id")
        else:
            await count("groups", group_members, "principal_id")
            await count("keys", access_keys, "principal_id")
        return counts
