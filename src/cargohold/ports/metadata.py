"""The metadata ports: one transaction object that reaches every role store.

A service opens a unit of work with `Metadata.read()` or `Metadata.write(changes=…)` and speaks
to the stores of that transaction by role (`tx.repositories`, `tx.uploads`, `tx.scans`, …). Each
role store is a Protocol here or in a sibling module; the SQL adapters live in `metadata/`.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cargohold.ports.access import (
        Events,
        Iam,
        IamPolicies,
        Identities,
        ResourcePolicyStore,
        Sessions,
    )
    from cargohold.ports.content import (
        Blobs,
        Manifests,
        Registries,
        Repositories,
        Templates,
        Uploads,
    )
    from cargohold.ports.ecs import EcsStore
    from cargohold.ports.lifecycle import Lifecycle
    from cargohold.ports.logs import LogStore
    from cargohold.ports.outbox import Outbox
    from cargohold.ports.work import Jobs, Leases, Scans, Vulnerabilities


class Changes(enum.Enum):
    """What a write transaction may change, as far as `service.readcache` is concerned."""

    #: Nothing any cache keeps: audit events, upload progress, pull times.
    NOTHING = "nothing"
    #: What repositories hold (blob links, manifests, tags), and nothing of who may do what.
    CONTENT = "content"
    #: Anything: identities, policies, repository settings, and content too.
    ANYTHING = "anything"


class Transaction(Protocol):
    """One unit of work; each attribute is the store of one role."""

    registries: Registries
    repositories: Repositories
    manifests: Manifests
    blobs: Blobs
    uploads: Uploads
    templates: Templates
    identities: Identities
    iam: Iam
    iam_policies: IamPolicies
    sessions: Sessions
    policies: ResourcePolicyStore
    events: Events
    scans: Scans
    vulnerabilities: Vulnerabilities
    jobs: Jobs
    leases: Leases
    lifecycle: Lifecycle
    ecs: EcsStore
    logs: LogStore
    outbox: Outbox


class Metadata(Protocol):
    """The metadata database, the single source of truth."""

    @property
    def generation(self) -> int:
        """Moves on with every committed write that may change cached reads other than
        content, whichever process of the registry made it, before that process answers."""
        ...

    @property
    def content_generation(self) -> int:
        """Moves on with every committed write that may change cached content, whichever
        process of the registry made it, before that process answers."""
        ...

    def observe(self) -> Awaitable[None] | None:
        """What to await, if anything, before reading the generations in a request, so that
        they count every write committed before the request came. Cheap: at most one round
        trip to the database per request, shared with the requests around it, and none where
        the generations are read as they are used."""
        ...

    def read(self) -> AbstractAsyncContextManager[Transaction]: ...

    def write(
        self, *, changes: Changes = Changes.ANYTHING
    ) -> AbstractAsyncContextManager[Transaction]: ...

    async def close(self) -> None: ...
