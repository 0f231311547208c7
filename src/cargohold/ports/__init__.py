"""The ports the service layer depends on; adapters in `storage/` and `metadata/` implement them.

Services import from here, never from the adapters: `storage` for blob drivers, `metadata` for
the transaction and its role stores.
"""

from cargohold.ports.access import (
    Events,
    Iam,
    IamPolicies,
    Identities,
    ResourcePolicyStore,
    Sessions,
)
from cargohold.ports.content import Blobs, Manifests, Registries, Repositories, Templates, Uploads
from cargohold.ports.ecs import EcsRecord, EcsStore, TaskFilter
from cargohold.ports.lifecycle import Lifecycle
from cargohold.ports.logs import EventQuery, LogEvent, LogGroup, LogStore, LogStream
from cargohold.ports.metadata import Changes, Metadata, Transaction
from cargohold.ports.observer import UNOBSERVED, Observer
from cargohold.ports.outbox import Outbox, OutboxRecord
from cargohold.ports.storage import (
    KeyNotFound,
    MetadataUnavailable,
    ObjectInfo,
    StagedUpload,
    StorageDriver,
    StorageError,
    StorageUnavailable,
    Unavailable,
    UploadState,
    UploadStateInvalid,
    UploadWriter,
)
from cargohold.ports.work import Jobs, Leases, Scans, Vulnerabilities

__all__ = [
    "UNOBSERVED",
    "Blobs",
    "Changes",
    "EcsRecord",
    "EcsStore",
    "EventQuery",
    "Events",
    "Iam",
    "IamPolicies",
    "Identities",
    "Jobs",
    "KeyNotFound",
    "Leases",
    "Lifecycle",
    "LogEvent",
    "LogGroup",
    "LogStore",
    "LogStream",
    "Manifests",
    "Metadata",
    "MetadataUnavailable",
    "ObjectInfo",
    "Observer",
    "Outbox",
    "OutboxRecord",
    "Registries",
    "Repositories",
    "ResourcePolicyStore",
    "Scans",
    "Sessions",
    "StagedUpload",
    "StorageDriver",
    "StorageError",
    "StorageUnavailable",
    "TaskFilter",
    "Templates",
    "Transaction",
    "Unavailable",
    "UploadState",
    "UploadStateInvalid",
    "UploadWriter",
    "Uploads",
    "Vulnerabilities",
]
