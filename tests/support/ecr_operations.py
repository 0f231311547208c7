"""Every ECR operation the registry serves and every `/v2/` route, as a table: how to call
each with parameters that change nothing a later call depends on (names that do not exist,
repeats of what is there), the ECR action it is authorized as and what kind of resource it
acts on. The authorization matrix and the expired-session tests run over these tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .v2 import TinyImage

#: Account A, whose registry holds the repositories the tables name.
A = "123456789012"
REGION = "us-east-1"
ABSENT_DIGEST = "sha256:" + "0" * 64
UPLOAD_ID = "00000000-0000-4000-8000-000000000000"

#: What an operation acts on: a repository of account A; account A's registry (`repository/*`);
#: or the caller's own account ("*"). OWN_REPOSITORY: a repository of the caller's own account
#: (an operation with no registryId).
REPOSITORY, REGISTRY, ACCOUNT = "repository", "registry", "account"
OWN_REPOSITORY = "own-repository"


# -- the ECR operations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    name: str
    scope: str
    #: The call's parameters, given the repository and its image.
    params: Callable[[str, TinyImage], dict[str, Any]]


def _repo(**extra: Any) -> Callable[[str, TinyImage], dict[str, Any]]:
    """A call on a repository of account A; a callable member is made from the repository's
    name and image."""

    def params(name: str, image: TinyImage) -> dict[str, Any]:
        values = {k: v(name, image) if callable(v) else v for k, v in extra.items()}
        return {"registryId": A, "repositoryName": name, **values}

    return params


def _none(**fixed: Any) -> Callable[[str, TinyImage], dict[str, Any]]:
    return lambda name, image: dict(fixed)


def repository_arn(name: str, image: TinyImage | None = None) -> str:
    return f"arn:aws:ecr:{REGION}:{A}:repository/{name}"


OPERATIONS = [
    # repositories, tags, settings, templates
    Operation("CreateRepository", REPOSITORY, _repo()),  # it exists: AlreadyExists
    Operation("DeleteRepository", REPOSITORY, _repo()),  # it holds an image: NotEmpty
    Operation(
        "DescribeRepositories", REPOSITORY, lambda n, i: {"registryId": A, "repositoryNames": [n]}
    ),
    Operation("PutImageTagMutability", REPOSITORY, _repo(imageTagMutability="MUTABLE")),
    Operation("DescribeRegistry", ACCOUNT, _none()),
    Operation(
        "TagResource",
        REPOSITORY,
        lambda n, i: {
            "resourceArn": repository_arn(n, i),
            "tags": [{"Key": "matrix", "Value": "x"}],
        },
    ),
    Operation(
        "UntagResource",
        REPOSITORY,
        lambda n, i: {"resourceArn": repository_arn(n, i), "tagKeys": ["absent"]},
    ),
    Operation(
        "ListTagsForResource", REPOSITORY, lambda n, i: {"resourceArn": repository_arn(n, i)}
    ),
    Operation("GetAccountSetting", ACCOUNT, _none(name="BLOB_MOUNTING")),
    Operation("PutAccountSetting", ACCOUNT, _none(name="BLOB_MOUNTING", value="DISABLED")),
    Operation(
        "CreateRepositoryCreationTemplate",
        ACCOUNT,
        _none(prefix="matrix-template", appliedFor=["REPLICATION"]),
    ),
    Operation("DescribeRepositoryCreationTemplates", ACCOUNT, _none()),
    Operation(
        "UpdateRepositoryCreationTemplate",
        ACCOUNT,
        _none(prefix="matrix-template", description="matrix"),
    ),
    Operation("DeleteRepositoryCreationTemplate", ACCOUNT, _none(prefix="matrix-absent")),
    # images and layers
    Operation("ListImages", REPOSITORY, _repo()),
    Operation("DescribeImages", REPOSITORY, _repo()),
    Operation("BatchGetImage", REPOSITORY, _repo(imageIds=[{"imageTag": "v1"}])),
    Operation("BatchDeleteImage", REPOSITORY, _repo(imageIds=[{"imageTag": "absent"}])),
    Operation(
        "PutImage",
        REPOSITORY,
        _repo(imageManifest=lambda n, i: i.manifest.decode(), imageTag="v1"),
    ),
    Operation(
        "BatchCheckLayerAvailability",
        REPOSITORY,
        _repo(layerDigests=lambda n, i: [i.layer_digest]),
    ),
    Operation("InitiateLayerUpload", REPOSITORY, _repo()),
    Operation(
        "UploadLayerPart",
        REPOSITORY,
        _repo(uploadId=UPLOAD_ID, partFirstByte=0, partLastByte=0, layerPartBlob=b"x"),
    ),
    Operation(
        "CompleteLayerUpload",
        REPOSITORY,
        _repo(uploadId=UPLOAD_ID, layerDigests=[ABSENT_DIGEST]),
    ),
    Operation("GetDownloadUrlForLayer", REPOSITORY, _repo(layerDigest=lambda n, i: i.layer_digest)),
    Operation(
        "ListImageReferrers",
        REPOSITORY,
        _repo(subjectId=lambda n, i: {"imageDigest": i.digest}),
    ),
    Operation("GetAuthorizationToken", ACCOUNT, _none()),
    # scanning
    Operation(
        "PutImageScanningConfiguration",
        REPOSITORY,
        _repo(imageScanningConfiguration={"scanOnPush": False}),
    ),
    Operation("GetRegistryScanningConfiguration", ACCOUNT, _none()),
    Operation("PutRegistryScanningConfiguration", ACCOUNT, _none(scanType="BASIC", rules=[])),
    Operation(
        "BatchGetRepositoryScanningConfiguration",
        OWN_REPOSITORY,
        lambda n, i: {"repositoryNames": [n]},
    ),
    Operation("StartImageScan", REPOSITORY, _repo(imageId=lambda n, i: {"imageDigest": i.digest})),
    Operation(
        "DescribeImageScanFindings",
        REPOSITORY,
        _repo(imageId=lambda n, i: {"imageDigest": i.digest}),
    ),
    # policies
    Operation("SetRepositoryPolicy", REPOSITORY, _repo(policyText="{")),  # refused as invalid
    Operation("GetRepositoryPolicy", REPOSITORY, _repo()),
    Operation("DeleteRepositoryPolicy", REPOSITORY, _repo()),
    Operation("PutRegistryPolicy", ACCOUNT, _none(policyText="{")),
    Operation("GetRegistryPolicy", ACCOUNT, _none()),
    Operation("DeleteRegistryPolicy", ACCOUNT, _none()),
    # lifecycle policies, the archive storage class, pull-time exclusions
    Operation(
        "PutLifecyclePolicy", REPOSITORY, _repo(lifecyclePolicyText="{" + " " * 120)
    ),  # refused as invalid
    Operation("GetLifecyclePolicy", REPOSITORY, _repo()),
    Operation("DeleteLifecyclePolicy", REPOSITORY, _repo()),
    Operation("StartLifecyclePolicyPreview", REPOSITORY, _repo()),  # no policy: NotFound
    Operation("GetLifecyclePolicyPreview", REPOSITORY, _repo()),
    Operation(
        "UpdateImageStorageClass",
        REPOSITORY,
        _repo(imageId={"imageTag": "absent"}, targetStorageClass="ARCHIVE"),
    ),
    Operation(
        "RegisterPullTimeUpdateExclusion",
        ACCOUNT,
        _none(principalArn=f"arn:aws:iam::{A}:role/matrix-exclusion"),
    ),
    Operation(
        "DeregisterPullTimeUpdateExclusion",
        ACCOUNT,
        _none(principalArn=f"arn:aws:iam::{A}:role/matrix-absent"),
    ),
    Operation("ListPullTimeUpdateExclusions", ACCOUNT, _none()),
]


# -- the /v2/ routes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    #: The path, given the repository and its image.
    path: Callable[[str, TinyImage], str]
    action: str
    scope: str = REPOSITORY
    body: Callable[[TinyImage], bytes] | None = None


ROUTES = [
    Route("catalog", "GET", lambda n, i: "/v2/_catalog", "ecr:DescribeRepositories", REGISTRY),
    Route("tags-list", "GET", lambda n, i: f"/v2/{n}/tags/list", "ecr:ListImages"),
    Route("manifest-get", "GET", lambda n, i: f"/v2/{n}/manifests/v1", "ecr:BatchGetImage"),
    Route("manifest-head", "HEAD", lambda n, i: f"/v2/{n}/manifests/v1", "ecr:BatchGetImage"),
    Route(
        "manifest-put",
        "PUT",
        lambda n, i: f"/v2/{n}/manifests/v1",
        "ecr:PutImage",
        body=lambda i: i.manifest,
    ),
    Route(
        "manifest-delete",
        "DELETE",
        lambda n, i: f"/v2/{n}/manifests/{ABSENT_DIGEST}",
        "ecr:BatchDeleteImage",
    ),
    Route(
        "blob-get",
        "GET",
        lambda n, i: f"/v2/{n}/blobs/{i.layer_digest}",
        "ecr:GetDownloadUrlForLayer",
    ),
    Route(
        "blob-head",
        "HEAD",
        lambda n, i: f"/v2/{n}/blobs/{i.layer_digest}",
        "ecr:BatchCheckLayerAvailability",
    ),
    Route(
        "blob-delete",
        "DELETE",
        lambda n, i: f"/v2/{n}/blobs/{ABSENT_DIGEST}",
        "ecr:BatchDeleteImage",
    ),
    Route(
        "upload-start", "POST", lambda n, i: f"/v2/{n}/blobs/uploads/", "ecr:InitiateLayerUpload"
    ),
    Route(
        "upload-status",
        "GET",
        lambda n, i: f"/v2/{n}/blobs/uploads/{UPLOAD_ID}",
        "ecr:InitiateLayerUpload",
    ),
    Route(
        "upload-patch",
        "PATCH",
        lambda n, i: f"/v2/{n}/blobs/uploads/{UPLOAD_ID}",
        "ecr:UploadLayerPart",
        body=lambda i: b"x",
    ),
    Route(
        "upload-finish",
        "PUT",
        lambda n, i: f"/v2/{n}/blobs/uploads/{UPLOAD_ID}?digest={ABSENT_DIGEST}",
        "ecr:CompleteLayerUpload",
    ),
    Route(
        "upload-cancel",
        "DELETE",
        lambda n, i: f"/v2/{n}/blobs/uploads/{UPLOAD_ID}",
        "ecr:InitiateLayerUpload",
    ),
    Route("referrers", "GET", lambda n, i: f"/v2/{n}/referrers/{i.digest}", "ecr:BatchGetImage"),
]
