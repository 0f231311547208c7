"""Repository creation templates: the settings a repository gets when something other than
CreateRepository creates it.

Owns creating, updating, deleting and describing templates (by prefix, ROOT matching every
name), and CREATE_ON_PUSH: a `/v2/` push to a missing repository creates it from the most
specific template applied for it, with the template's `repositoryPolicy` as its policy.
Repositories themselves, and the rules their settings follow, are service/repositories.py's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cargohold.domain.errors import (
    InvalidParameter,
    RepositoryAlreadyExists,
    TemplateAlreadyExists,
    TemplateNotFound,
)
from cargohold.domain.lifecycle_policy import parse_lifecycle_policy
from cargohold.domain.names import validate_repository_name
from cargohold.domain.policy import PolicyKind, parse_policy
from cargohold.domain.records import Repository
from cargohold.ports import Metadata, Transaction
from cargohold.service.repositories import (
    Page,
    RepositorySettings,
    decode_token,
    encode_token,
    encryption_configuration,
    existing_repository,
    insert_repository,
    invalid,
    page_size,
    require_registry,
    resource_tags,
    tag_mutability,
)

log = logging.getLogger(__name__)

APPLIED_FOR = ("REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH")
ROOT = "ROOT"

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_PREFIX = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_ROLE_ARN = re.compile(r"arn:aws[-a-z0-9]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]*")


@dataclass(frozen=True, slots=True)
class CreationTemplate:
    """A repository creation template; `settings` holds the members ECR shapes it with."""

    prefix: str
    settings: dict[str, Any]
    created_at: float
    updated_at: float

    @property
    def applied_for(self) -> list[str]:
        return list(self.settings.get("appliedFor", []))

    def matches(self, name: str) -> bool:
        """ROOT matches every name; any other prefix has an implied `/` after it."""
        return self.prefix == ROOT or name.startswith(self.prefix + "/")

    def repository_settings(self) -> RepositorySettings:
        """What a repository created from this template starts with."""
        settings = self.settings
        return RepositorySettings(
            tag_mutability=settings.get("imageTagMutability", "MUTABLE"),
            tag_mutability_filters=list(settings.get("imageTagMutabilityExclusionFilters", [])),
            encryption=encryption_configuration(settings.get("encryptionConfiguration")),
            tags={t["Key"]: t["Value"] for t in settings.get("resourceTags", [])},
        )


def template_prefix(prefix: str) -> str:
    """A prefix as stored: `prod/` and `prod` name the same namespace (ECR assumes the `/`)."""
    if prefix == ROOT:
        return prefix
    bare = prefix.removesuffix("/")
    if not _PREFIX.fullmatch(bare):
        raise invalid("prefix", "Prefix must be ROOT or a repository namespace")
    return bare


def _applied_for(given: Sequence[str]) -> list[str]:
    applied = list(dict.fromkeys(given))
    unknown = [a for a in applied if a not in APPLIED_FOR]
    if unknown or not applied:
        raise invalid(
            "appliedFor", f"Member must satisfy enum value set: [{', '.join(APPLIED_FOR)}]"
        )
    return applied


def _apply_tag_mutability(params: Mapping[str, Any], settings: dict[str, Any]) -> None:
    """A mode and its filters as given over those held, checked together."""
    mode = params.get("imageTagMutability", settings.get("imageTagMutability", "MUTABLE"))
    if "imageTagMutabilityExclusionFilters" in params:
        filters = params["imageTagMutabilityExclusionFilters"]
    elif mode.endswith("_WITH_EXCLUSION"):
        filters = settings.get("imageTagMutabilityExclusionFilters")
    else:
        filters = None
    mode, checked = tag_mutability(mode, filters)
    settings["imageTagMutability"] = mode
    settings.pop("imageTagMutabilityExclusionFilters", None)
    if checked:
        settings["imageTagMutabilityExclusionFilters"] = checked


def template_settings(
    params: Mapping[str, Any], base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The template's members after applying `params` over `base` (an update's old state)."""
    settings: dict[str, Any] = dict(base or {})
    for member in ("description", "repositoryPolicy", "lifecyclePolicy"):
        if member in params:
            settings[member] = params[member]
    if settings.get("repositoryPolicy"):
        # Checked now, as SetRepositoryPolicy would check it, so that a push creating a
        # repository from the template never meets a policy it cannot apply.
        parse_policy(settings["repositoryPolicy"], PolicyKind.REPOSITORY)
    if "customRoleArn" in params:
        role = params["customRoleArn"]
        if role and not _ROLE_ARN.fullmatch(role):
            raise invalid("customRoleArn", "Invalid ARN")
        settings["customRoleArn"] = role
    if "encryptionConfiguration" in params:
        settings["encryptionConfiguration"] = encryption_configuration(
            params["encryptionConfiguration"]
        )
    if "resourceTags" in params:
        tags = resource_tags(params["resourceTags"])
        settings["resourceTags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    if "appliedFor" in params:
        settings["appliedFor"] = _applied_for(params["appliedFor"])
    if "imageTagMutability" in params or "imageTagMutabilityExclusionFilters" in params:
        _apply_tag_mutability(params, settings)
    settings.setdefault("imageTagMutability", "MUTABLE")
    settings.setdefault("encryptionConfiguration", {"encryptionType": "AES256"})
    settings.setdefault("resourceTags", [])
    return settings


def _as_template(stored: dict[str, Any]) -> CreationTemplate:
    settings = {k: v for k, v in stored.items() if k not in ("prefix", "createdAt", "updatedAt")}
    return CreationTemplate(
        stored["prefix"], settings, float(stored["createdAt"]), float(stored["updatedAt"])
    )


def _template_missing(prefix: str, registry_id: str) -> TemplateNotFound:
    return TemplateNotFound(
        f"The repository creation template with the prefix '{prefix}' does not exist in "
        f"the registry with id '{registry_id}'"
    )


class TemplateService:
    def __init__(
        self,
        store: Metadata,
        clock: Callable[[], float],
        *,
        lifecycle_interval: float = 86400.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lifecycle_interval = lifecycle_interval

    async def create_template(
        self, registry_id: str, prefix: str, params: Mapping[str, Any]
    ) -> CreationTemplate:
        """`params` are CreateRepositoryCreationTemplate's members (appliedFor is required)."""
        prefix = template_prefix(prefix)
        if "appliedFor" not in params:
            raise invalid("appliedFor", "Member must not be null")
        settings = template_settings(params)
        async with self._store.write() as tx:
            await require_registry(tx, registry_id)
            if not await tx.templates.insert_creation_template(
                registry_id, prefix, settings, self._clock()
            ):
                raise TemplateAlreadyExists(
                    f"The repository creation template with the prefix '{prefix}' already "
                    f"exists in the registry with id '{registry_id}'"
                )
            stored = await tx.templates.get_creation_template(registry_id, prefix)
        assert stored is not None
        return _as_template(stored)

    async def update_template(
        self, registry_id: str, prefix: str, params: Mapping[str, Any]
    ) -> CreationTemplate:
        """Members given replace the template's; members left out stay as they were."""
        prefix = template_prefix(prefix)
        async with self._store.write() as tx:
            stored = await tx.templates.get_creation_template(registry_id, prefix)
            if stored is None:
                raise _template_missing(prefix, registry_id)
            settings = template_settings(params, _as_template(stored).settings)
            await tx.templates.update_creation_template(
                registry_id, prefix, settings, self._clock()
            )
            stored = await tx.templates.get_creation_template(registry_id, prefix)
        assert stored is not None
        return _as_template(stored)

    async def delete_template(self, registry_id: str, prefix: str) -> CreationTemplate:
        prefix = template_prefix(prefix)
        async with self._store.write() as tx:
            stored = await tx.templates.get_creation_template(registry_id, prefix)
            if stored is None or not await tx.templates.delete_creation_template(
                registry_id, prefix
            ):
                raise _template_missing(prefix, registry_id)
        return _as_template(stored)

    async def describe_templates(
        self,
        registry_id: str,
        prefixes: Sequence[str] | None = None,
        *,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[CreationTemplate]:
        """Templates by prefix (those that exist), or all of them, a page at a time."""
        limit = page_size(max_results)
        after = decode_token("templates", next_token)
        wanted = [template_prefix(p) for p in prefixes] if prefixes else None
        async with self._store.read() as tx:
            await require_registry(tx, registry_id)
            found = await tx.templates.list_creation_templates(
                registry_id, prefixes=wanted, after=after, limit=limit + 1
            )
        templates = [_as_template(t) for t in found]
        if len(templates) > limit:
            return Page(templates[:limit], encode_token("templates", templates[limit - 1].prefix))
        return Page(templates)

    # -- CREATE_ON_PUSH ---------------------------------------------------------------------

    async def create_from_template(self, registry_id: str, name: str) -> Repository | None:
        """CREATE_ON_PUSH: create `name` from the most specific template applied for it.

        None when no template applied for CREATE_ON_PUSH matches (the push then fails as ECR's
        does). A repository that exists already, perhaps created by a concurrent push, is
        returned as it is.
        """
        validate_repository_name(name)
        try:
            async with self._store.write() as tx:
                existing = await tx.repositories.get_repository(registry_id, name)
                if existing is not None:
                    return existing
                template = await self._template_for(tx, registry_id, name, "CREATE_ON_PUSH")
                if template is None:
                    return None
                created = await insert_repository(
                    tx, registry_id, name, template.repository_settings(), self._clock()
                )
                policy = template.settings.get("repositoryPolicy")
                if policy:
                    await tx.policies.put_repository_policy(created.id, policy, self._clock())
                await self._apply_lifecycle_policy(tx, template, created)
                return created
        except RepositoryAlreadyExists:
            async with self._store.read() as tx:
                return await existing_repository(tx, registry_id, name)

    async def _apply_lifecycle_policy(
        self, tx: Transaction, template: CreationTemplate, created: Repository
    ) -> None:
        """The template's lifecycle policy becomes the repository's, as PutLifecyclePolicy
        would set it; a text PutLifecyclePolicy would refuse is left out, and said so."""
        text = template.settings.get("lifecyclePolicy")
        if not text:
            return
        try:
            parse_lifecycle_policy(text)
        except InvalidParameter as exc:
            log.warning(
                "template %r: lifecycle policy not applied to %s: %s",
                template.prefix,
                created.name,
                exc.message,
            )
            return
        now = self._clock()
        await tx.lifecycle.put_lifecycle_policy(
            created.id, text, now, now + self._lifecycle_interval
        )

    async def creates_on_push(self, registry_id: str, name: str) -> bool:
        """Whether a template applied for CREATE_ON_PUSH matches `name`."""
        async with self._store.read() as tx:
            return await self._template_for(tx, registry_id, name, "CREATE_ON_PUSH") is not None

    @staticmethod
    async def _template_for(
        tx: Transaction, registry_id: str, name: str, scenario: str
    ) -> CreationTemplate | None:
        templates = [
            _as_template(t) for t in await tx.templates.list_creation_templates(registry_id)
        ]
        candidates = [t for t in templates if scenario in t.applied_for and t.matches(name)]
        # The longest prefix is the most specific; ROOT is the least specific of all.
        return max(
            candidates, key=lambda t: -1 if t.prefix == ROOT else len(t.prefix), default=None
        )
