"""IAM inline and managed policies, their versions and attachments."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cargohold.domain.identity import (
    ROLE,
    USER,
    Attached,
    Entity,
    ManagedPolicy,
    PolicyVersion,
    name_key,
)
from cargohold.metadata.iam import group_row, identity_row
from cargohold.metadata.schema import (
    group_members,
    iam_groups,
    inline_policies,
    managed_policies,
    policy_attachments,
    policy_versions,
    principals,
)
from cargohold.metadata.sql import SqlStore


def _policy(row: Any) -> ManagedPolicy:
    return ManagedPolicy(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        path=row.path,
        arn=row.arn,
        default_version=row.default_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        description=row.description,
        attachment_count=row.attachment_count,
    )


_COUNTED = policy_attachments.alias("counted_attachments")

_ATTACHMENT_COUNT = (
    sa.select(sa.func.count())
    .select_from(_COUNTED)
    .where(_COUNTED.c.policy_id == managed_policies.c.id)
    .correlate(managed_policies)
    .scalar_subquery()
    .label("attachment_count")
)


class SqlIamPolicies(SqlStore):
    """IAM inline and managed policies, their versions and attachments."""

    async def put_inline(self, entity: Entity, name: str, document: str, now: float) -> None:
        """Create or replace the entity's inline policy `name`."""
        column = inline_policies.c[entity.column]
        updated = await self.conn.execute(
            sa.update(inline_policies)
            .where(column == entity.id, inline_policies.c.name == name)
            .values(document=document, updated_at=now)
        )
        if not updated.rowcount:
            await self.conn.execute(
                sa.insert(inline_policies).values(
                    {
                        entity.column: entity.id,
                        "name": name,
                        "document": document,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            )

    async def inline_policies(self, entity: Entity) -> dict[str, str]:
        """The entity's inline policies, name to document, by name."""
        rows = await self.conn.execute(
            sa.select(inline_policies.c.name, inline_policies.c.document)
            .where(inline_policies.c[entity.column] == entity.id)
            .order_by(inline_policies.c.name)
        )
        return {row.name: row.document for row in rows}

    async def delete_inline(self, entity: Entity, name: str) -> bool:
        result = await self.conn.execute(
            sa.delete(inline_policies).where(
                inline_policies.c[entity.column] == entity.id, inline_policies.c.name == name
            )
        )
        return bool(result.rowcount)

    async def insert_policy(self, policy: ManagedPolicy, document: str) -> bool:
        """Insert the policy with `document` as its version v1 (its default); False when the
        name (in any case) or the ARN is taken."""
        stmt = (
            self._insert(managed_policies)
            .values(
                id=policy.id,
                account_id=policy.account_id,
                name=policy.name,
                name_key=name_key(policy.name),
                path=policy.path,
                arn=policy.arn,
                description=policy.description,
                default_version=policy.default_version,
                next_version=int(policy.default_version.removeprefix("v")) + 1,
                created_at=policy.created_at,
                updated_at=policy.updated_at,
            )
            .on_conflict_do_nothing()
            .returning(managed_policies.c.id)
        )
        if (await self.conn.execute(stmt)).first() is None:
            return False
        await self.conn.execute(
            sa.insert(policy_versions).values(
                policy_id=policy.id,
                version_id=policy.default_version,
                document=document,
                created_at=policy.updated_at,
            )
        )
        return True

    async def policy_by_arn(self, arn: str, *, for_update: bool = False) -> ManagedPolicy | None:
        query = sa.select(managed_policies, _ATTACHMENT_COUNT).where(managed_policies.c.arn == arn)
        if for_update:
            query = query.with_for_update(of=managed_policies)
        row = (await self.conn.execute(query)).first()
        return _policy(row) if row else None

    async def list_policies(
        self, account_id: str, *, local: bool, aws: bool
    ) -> list[ManagedPolicy]:
        """The account's own policies (`local`) and AWS's (`aws`), by name."""
        scopes = []
        if local:
            scopes.append(managed_policies.c.account_id == account_id)
        if aws:
            scopes.append(managed_policies.c.account_id.is_(None))
        if not scopes:
            return []
        rows = await self.conn.execute(
            sa.select(managed_policies, _ATTACHMENT_COUNT)
            .where(sa.or_(*scopes))
            .order_by(managed_policies.c.name_key, managed_policies.c.arn)
        )
        return [_policy(row) for row in rows]

    async def delete_policy(self, policy_id: str) -> None:
        await self.conn.execute(
            sa.delete(managed_policies).where(managed_policies.c.id == policy_id)
        )

    async def versions(self, policy_id: str, default_version: str) -> list[PolicyVersion]:
        """The policy's versions, newest first."""
        rows = await self.conn.execute(
            sa.select(policy_versions)
            .where(policy_versions.c.policy_id == policy_id)
            .order_by(policy_versions.c.created_at.desc(), policy_versions.c.version_id.desc())
        )
        return [
            PolicyVersion(
                policy_id=row.policy_id,
                version_id=row.version_id,
                document=row.document,
                is_default=row.version_id == default_version,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def version_document(self, policy_id: str, version_id: str) -> tuple[str, float] | None:
        row = (
            await self.conn.execute(
                sa.select(policy_versions.c.document, policy_versions.c.created_at).where(
                    policy_versions.c.policy_id == policy_id,
                    policy_versions.c.version_id == version_id,
                )
            )
        ).first()
        return (row.document, row.created_at) if row else None

    async def add_version(
        self, policy_id: str, document: str, *, set_default: bool, now: float
    ) -> str:
        """Add the next version (`v<n>`, never reused); the new version id."""
        number = (
            await self.conn.execute(
                sa.select(managed_policies.c.next_version).where(managed_policies.c.id == policy_id)
            )
        ).scalar_one()
        version_id = f"v{number}"
        await self.conn.execute(
            sa.insert(policy_versions).values(
                policy_id=policy_id, version_id=version_id, document=document, created_at=now
            )
        )
        values: dict[str, Any] = {"next_version": number + 1, "updated_at": now}
        if set_default:
            values["default_version"] = version_id
        await self.conn.execute(
            sa.update(managed_policies).where(managed_policies.c.id == policy_id).values(**values)
        )
        return version_id

    async def delete_version(self, policy_id: str, version_id: str) -> bool:
        result = await self.conn.execute(
            sa.delete(policy_versions).where(
                policy_versions.c.policy_id == policy_id,
                policy_versions.c.version_id == version_id,
            )
        )
        return bool(result.rowcount)

    async def set_default_version(self, policy_id: str, version_id: str, now: float) -> None:
        await self.conn.execute(
            sa.update(managed_policies)
            .where(managed_policies.c.id == policy_id)
            .values(default_version=version_id, updated_at=now)
        )

    async def replace_aws_policy(self, policy: ManagedPolicy, document: str) -> None:
        """Bring a stored AWS managed policy to `policy`'s default version and `document`."""
        await self.conn.execute(
            sa.update(managed_policies)
            .where(managed_policies.c.id == policy.id)
            .values(
                description=policy.description,
                default_version=policy.default_version,
                next_version=int(policy.default_version.removeprefix("v")) + 1,
                updated_at=policy.updated_at,
            )
        )
        await self.conn.execute(
            sa.delete(policy_versions).where(policy_versions.c.policy_id == policy.id)
        )
        await self.conn.execute(
            sa.insert(policy_versions).values(
                policy_id=policy.id,
                version_id=policy.default_version,
                document=document,
                created_at=policy.updated_at,
            )
        )

    async def attach(self, policy_id: str, entity: Entity, now: float) -> None:
        await self.conn.execute(
            self._insert(policy_attachments)
            .values({entity.column: entity.id, "policy_id": policy_id, "attached_at": now})
            .on_conflict_do_nothing()
        )

    async def detach(self, policy_id: str, entity: Entity) -> bool:
        result = await self.conn.execute(
            sa.delete(policy_attachments).where(
                policy_attachments.c.policy_id == policy_id,
                policy_attachments.c[entity.column] == entity.id,
            )
        )
        return bool(result.rowcount)

    async def attached_policies(self, entity: Entity) -> list[ManagedPolicy]:
        rows = await self.conn.execute(
            sa.select(managed_policies, _ATTACHMENT_COUNT)
            .join(policy_attachments, policy_attachments.c.policy_id == managed_policies.c.id)
            .where(policy_attachments.c[entity.column] == entity.id)
            .order_by(managed_policies.c.name_key, managed_policies.c.arn)
        )
        return [_policy(row) for row in rows]

    async def attached_to(self, policy_id: str) -> Attached:
        people = await self.conn.execute(
            sa.select(principals)
            .join(policy_attachments, policy_attachments.c.principal_id == principals.c.id)
            .where(policy_attachments.c.policy_id == policy_id)
            .order_by(principals.c.name_key)
        )
        found = [identity_row(row) for row in people]
        groups = await self.conn.execute(
            sa.select(iam_groups)
            .join(policy_attachments, policy_attachments.c.group_id == iam_groups.c.id)
            .where(policy_attachments.c.policy_id == policy_id)
            .order_by(iam_groups.c.name_key)
        )
        return Attached(
            users=[identity for identity in found if identity.kind == USER],
            groups=[group_row(row) for row in groups],
            roles=[identity for identity in found if identity.kind == ROLE],
        )

    async def identity_documents(self, principal_id: str) -> list[str]:
        """Every identity-based policy document that applies to a user or role: its inline
        policies, the default versions of its managed policies, and those of its groups."""
        group_ids = sa.select(group_members.c.group_id).where(
            group_members.c.principal_id == principal_id
        )
        owned = sa.or_(
            inline_policies.c.principal_id == principal_id,
            inline_policies.c.group_id.in_(group_ids),
        )
        inline = await self.conn.execute(
            sa.select(inline_policies.c.document).where(owned).order_by(inline_policies.c.id)
        )
        attached = sa.or_(
            policy_attachments.c.principal_id == principal_id,
            policy_attachments.c.group_id.in_(group_ids),
        )
        managed = await self.conn.execute(
            sa.select(policy_versions.c.document)
            .select_from(
                policy_attachments.join(
                    managed_policies, managed_policies.c.id == policy_attachments.c.policy_id
                ).join(
                    policy_versions,
                    sa.and_(
                        policy_versions.c.policy_id == managed_policies.c.id,
                        policy_versions.c.version_id == managed_policies.c.default_version,
                    ),
                )
            )
            .where(attached)
            .distinct()
        )
        return [row.document for row in inline] + [row.document for row in managed]
