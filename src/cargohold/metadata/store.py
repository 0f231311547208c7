"""The metadata database: one transaction per unit of work, reaching every role store.

`MetadataStore.read()` / `.write()` open a transaction and hand out a `SqlTransaction` whose
attributes are the role stores (`tx.repositories`, `tx.manifests`, `tx.uploads`, …), each in its
own module of this package. `ports.metadata` is the contract services see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cargohold.metadata import database
from cargohold.metadata.blobs import SqlBlobs
from cargohold.metadata.ecs import SqlEcs
from cargohold.metadata.events import SqlEvents
from cargohold.metadata.generations import Generations, for_url
from cargohold.metadata.iam import SqlIam
from cargohold.metadata.iam_policies import SqlIamPolicies
from cargohold.metadata.identities import SqlIdentities
from cargohold.metadata.jobs import SqlJobs
from cargohold.metadata.leases import SqlLeases
from cargohold.metadata.lifecycle import SqlLifecycle
from cargohold.metadata.logs import SqlLogs
from cargohold.metadata.manifests import SqlManifests
from cargohold.metadata.outbox import SqlOutbox
from cargohold.metadata.policies import SqlPolicies
from cargohold.metadata.registries import SqlRegistries
from cargohold.metadata.repositories import SqlRepositories
from cargohold.metadata.scans import SqlScans
from cargohold.metadata.sessions import SqlSessions
from cargohold.metadata.templates import SqlTemplates
from cargohold.metadata.uploads import SqlUploads
from cargohold.metadata.vulnerabilities import SqlVulnerabilities
from cargohold.ports import (
    Blobs,
    EcsStore,
    Events,
    Iam,
    IamPolicies,
    Identities,
    Jobs,
    Leases,
    Lifecycle,
    LogStore,
    Manifests,
    Outbox,
    Registries,
    Repositories,
    ResourcePolicyStore,
    Scans,
    Sessions,
    Templates,
    Uploads,
    Vulnerabilities,
)
from cargohold.ports.metadata import Changes


class SqlTransaction:
    """One transaction; each attribute is the SQL store of one role."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.registries: Registries = SqlRegistries(conn)
        self.repositories: Repositories = SqlRepositories(conn)
        self.manifests: Manifests = SqlManifests(conn)
        self.blobs: Blobs = SqlBlobs(conn)
        self.uploads: Uploads = SqlUploads(conn)
        self.templates: Templates = SqlTemplates(conn)
        self.identities: Identities = SqlIdentities(conn)
        self.iam: Iam = SqlIam(conn)
        self.iam_policies: IamPolicies = SqlIamPolicies(conn)
        self.sessions: Sessions = SqlSessions(conn)
        self.policies: ResourcePolicyStore = SqlPolicies(conn)
        self.events: Events = SqlEvents(conn)
        self.scans: Scans = SqlScans(conn)
        self.vulnerabilities: Vulnerabilities = SqlVulnerabilities(conn)
        self.jobs: Jobs = SqlJobs(conn)
        self.leases: Leases = SqlLeases(conn)
        self.lifecycle: Lifecycle = SqlLifecycle(conn)
        self.ecs: EcsStore = SqlEcs(conn)
        self.logs: LogStore = SqlLogs(conn)
        self.outbox: Outbox = SqlOutbox(conn)


class MetadataStore:
    def __init__(self, engine: AsyncEngine, generations: Generations | None = None) -> None:
        self.engine = engine
        self._generations = generations or for_url(engine.url.render_as_string(hide_password=False))

    @classmethod
    def from_url(cls, url: str) -> MetadataStore:
        return cls(database.create_engine(url), for_url(url))

    @property
    def generation(self) -> int:
        """Moves on with every committed write, by any process of this database, that may
        change cached reads other than content (see `metadata.generations`)."""
        return self._generations.anything

    @property
    def content_generation(self) -> int:
        """Moves on with every committed write, by any process of this database, that may
        change cached content (and with `generation`)."""
        return self._generations.content

    def observe(self) -> Awaitable[None] | None:
        """See `ports.metadata.Metadata.observe`."""
        return self._generations.observe()

    async def start(self) -> None:
        """Follow the writes of the other processes of this database from now on (a server
        does; a one-off command need not, and then caches nothing on PostgreSQL)."""
        await self._generations.start()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTransaction]:
        async with database.transaction(self.engine, write=False) as conn:
            yield SqlTransaction(conn)

    @asynccontextmanager
    async def write(self, *, changes: Changes = Changes.ANYTHING) -> AsyncIterator[SqlTransaction]:
        """A write transaction. Committing it moves on the generations of what it `changes`
        in every process, which drops the cached reads that depend on them: a push
        (`Changes.CONTENT`) keeps the cached principals, policies and decisions."""
        try:
            async with database.transaction(self.engine, write=True) as conn:
                yield SqlTransaction(conn)
                await self._generations.record(conn, changes)
        finally:
            self._generations.wrote(changes)

    async def ping(self) -> None:
        """One round trip to the database; `MetadataUnavailable` when it cannot be made."""
        await database.ping(self.engine)

    async def close(self) -> None:
        await self._generations.close()
        await self.engine.dispose()
