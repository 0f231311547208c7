"""Which OCI Distribution route a `/v2/` path names, and the ECR action AWS maps it to.

A repository name may hold slashes, so each route's pattern takes the name greedily and
anchors on what follows it (`/manifests/<reference>`, `/blobs/uploads/<upload>`, …). The
first pattern that matches decides: a method it does not serve is unsupported, whatever a
later pattern would say.

`check_params` validates a matched route's repository name (and what a manifest reference must
look like) before authorization, which reads the repository's policy by that name.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from cargohold.domain.errors import ManifestUnknown, TagInvalid
from cargohold.domain.names import validate_repository_name, validate_tag


@dataclass(frozen=True, slots=True)
class _Route:
    pattern: re.Pattern[str]
    methods: dict[str, str]  # HTTP method → handler name


_N = r"(?P<name>.+)"
_ROUTES = [
    _Route(re.compile(rf"^/v2/{_N}/tags/list$"), {"GET": "tags"}),
    _Route(
        re.compile(rf"^/v2/{_N}/manifests/(?P<reference>[^/]+)$"),
        {
            "GET": "get_manifest",
            "HEAD": "get_manifest",
            "PUT": "put_manifest",
            "DELETE": "delete_manifest",
        },
    ),
    _Route(re.compile(rf"^/v2/{_N}/blobs/uploads/?$"), {"POST": "start_upload"}),
    _Route(
        re.compile(rf"^/v2/{_N}/blobs/uploads/(?P<upload>[^/]+)$"),
        {
            "GET": "upload_status",
            "PATCH": "patch_upload",
            "PUT": "finish_upload",
            "DELETE": "cancel_upload",
        },
    ),
    _Route(
        re.compile(rf"^/v2/{_N}/blobs/(?P<digest>[^/]+)$"),
        {"GET": "get_blob", "HEAD": "get_blob", "DELETE": "delete_blob"},
    ),
    _Route(re.compile(rf"^/v2/{_N}/referrers/(?P<digest>[^/]+)$"), {"GET": "referrers"}),
]

#: The handler of `/v2/` itself (the API version check).
BASE = "base"
#: The handler of `/v2/_catalog`.
CATALOG = "catalog"

# The ECR action AWS documents for each route (DESIGN.md, auth path).
ACTIONS = {
    "tags": "ecr:ListImages",
    "get_manifest": "ecr:BatchGetImage",
    "put_manifest": "ecr:PutImage",
    "delete_manifest": "ecr:BatchDeleteImage",
    "start_upload": "ecr:InitiateLayerUpload",
    "upload_status": "ecr:InitiateLayerUpload",
    "patch_upload": "ecr:UploadLayerPart",
    "finish_upload": "ecr:CompleteLayerUpload",
    "cancel_upload": "ecr:InitiateLayerUpload",
    "get_blob": "ecr:GetDownloadUrlForLayer",
    "head_blob": "ecr:BatchCheckLayerAvailability",
    "delete_blob": "ecr:BatchDeleteImage",
    "referrers": "ecr:BatchGetImage",
    CATALOG: "ecr:DescribeRepositories",
}


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The route a path names."""

    #: The handler's name; None when the route does not serve the request's method.
    handler: str | None
    #: The repository name; None for `/v2/` and the catalog.
    name: str | None = None
    #: The path's other parameters (reference, digest, upload).
    params: dict[str, str] = field(default_factory=dict)


def match_route(path: str, method: str) -> RouteMatch | None:
    """The route `path` names for `method`, or None when no route has that path."""
    if path in ("/v2/", "/v2"):
        return RouteMatch(BASE if method in ("GET", "HEAD") else None)
    if path == "/v2/_catalog":
        return RouteMatch(CATALOG if method == "GET" else None)
    for route in _ROUTES:
        match = route.pattern.match(path)
        if match is None:
            continue
        params = match.groupdict()
        name = params.pop("name")
        return RouteMatch(route.methods.get(method), name, params)
    return None


def action(handler: str, method: str) -> str:
    """The ECR action a request to `handler` with `method` needs."""
    return ACTIONS["head_blob" if (handler, method) == ("get_blob", "HEAD") else handler]


def check_params(found: RouteMatch) -> None:
    """Raise the spec's error for a malformed repository name, or a manifest reference that
    can name no manifest, before authorization reads the repository's policy by that name.

    A reference that is neither a tag nor digest-shaped (no `:`) names no manifest: GET, HEAD
    and DELETE answer MANIFEST_UNKNOWN, a PUT (which would create the tag) TAG_INVALID. Digests
    and upload ids are parsed by the service before anything looks them up (DIGEST_INVALID,
    BLOB_UPLOAD_UNKNOWN)."""
    if found.name is not None:
        _valid_name(found.name)
    reference = found.params.get("reference")
    if reference is None or ":" in reference or _is_tag(reference):
        return
    if found.handler == "put_manifest":
        raise TagInvalid(f"invalid tag: {reference[:200]!r}")
    raise ManifestUnknown(f"manifest unknown: {reference[:200]!r}")


# Names and tags recur on every request; each is checked by a regular expression once.
_valid_name = functools.lru_cache(maxsize=4096)(validate_repository_name)


@functools.lru_cache(maxsize=4096)
def _is_tag(reference: str) -> bool:
    try:
        validate_tag(reference)
    except TagInvalid:
        return False
    return True
