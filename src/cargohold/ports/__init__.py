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
from cargohold.ports.metadata import Changes, Metadata, Transaction
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
from cargohold.ports.work import Jobs, Scans, Vulnerabilities

__all__ = [
    "Blobs",
    "Changes",
    "Events",
    "Iam",
    "IamPolicies",
    "Identities",
    "Jobs",
    "KeyNotFound",
    "Manifests",
    "Metadata",
    "MetadataUnavailable",
    "ObjectInfo",
    "Registries",
    "Repositories",
    "ResourcePolicyStore",
    "Scans",
    "Sessions",
    "StagedUpload",
    "StorageDriver",
    "StorageError",
    "StorageUnavailable",
    "Templates",
    "Transaction",
    "Unavailable",
    "UploadState",
    "UploadStateInvalid",
    "UploadWriter",
    "Uploads",
    "Vulnerabilities",
]
