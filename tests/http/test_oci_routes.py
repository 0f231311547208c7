"""Which route a `/v2/` path names, and the ECR action each one needs."""

from __future__ import annotations

import pytest

from cargohold.http.oci_routes import ACTIONS, BASE, CATALOG, RouteMatch, action, match_route

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v2/", RouteMatch(BASE)),
        ("HEAD", "/v2", RouteMatch(BASE)),
        ("POST", "/v2/", RouteMatch(None)),
        ("GET", "/v2/_catalog", RouteMatch(CATALOG)),
        ("HEAD", "/v2/_catalog", RouteMatch(None)),
        ("GET", "/v2/a/b/c/tags/list", RouteMatch("tags", "a/b/c")),
        (
            "HEAD",
            "/v2/team/app/manifests/v1",
            RouteMatch("get_manifest", "team/app", {"reference": "v1"}),
        ),
        (
            "PUT",
            "/v2/app/manifests/latest",
            RouteMatch("put_manifest", "app", {"reference": "latest"}),
        ),
        ("POST", "/v2/team/app/blobs/uploads/", RouteMatch("start_upload", "team/app")),
        ("POST", "/v2/app/blobs/uploads", RouteMatch("start_upload", "app")),
        (
            "PATCH",
            "/v2/app/blobs/uploads/u-1",
            RouteMatch("patch_upload", "app", {"upload": "u-1"}),
        ),
        ("GET", f"/v2/x/blobs/{DIGEST}", RouteMatch("get_blob", "x", {"digest": DIGEST})),
        ("GET", f"/v2/x/referrers/{DIGEST}", RouteMatch("referrers", "x", {"digest": DIGEST})),
        # The first pattern that matches decides, even if a later one would serve the method.
        ("GET", "/v2/app/blobs/uploads", RouteMatch(None, "app")),
        ("POST", "/v2/app/manifests/v1", RouteMatch(None, "app", {"reference": "v1"})),
        # A name that itself ends like a route is taken greedily.
        (
            "GET",
            "/v2/a/manifests/b/manifests/c",
            RouteMatch("get_manifest", "a/manifests/b", {"reference": "c"}),
        ),
    ],
)
def test_match_route(method: str, path: str, expected: RouteMatch) -> None:
    assert match_route(path, method) == expected


@pytest.mark.parametrize(
    "path", ["/v2/app", "/v2/app/manifests/", "/v2//tags/list", "/v3/app/tags/list"]
)
def test_paths_no_route_names(path: str) -> None:
    assert match_route(path, "GET") is None


def test_actions() -> None:
    assert action("get_blob", "GET") == "ecr:GetDownloadUrlForLayer"
    assert action("get_blob", "HEAD") == "ecr:BatchCheckLayerAvailability"
    assert action("get_manifest", "HEAD") == ACTIONS["get_manifest"] == "ecr:BatchGetImage"
    assert ACTIONS[CATALOG] == "ecr:DescribeRepositories"
