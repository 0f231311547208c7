"""Route matching for `/v2/`: cargohold's own table against a Starlette Router with the same routes.

    .venv/bin/python bench/routing.py            # --n 100000 --repeat 5

In-process, no network: both matchers are given the same representative requests (pulls, pushes,
listings; repository names of one to three segments) and must agree on every one before they are
timed. Prints microseconds per match, the best of `--repeat` runs of `--n` matches each.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import Match, Route, Router

from cargohold.http.oci_routes import match_route

DIGEST = "sha256:" + "0123456789abcdef" * 4
UPLOAD = "8f14e45f-ceea-467f-a0e6-3c2f1a7d1b2e"
NAMES = ("app", "team/app", "org/team/service")

Matcher = Callable[[str, str], tuple[str | None, str | None, dict[str, str]] | None]


def requests() -> list[tuple[str, str]]:
    """(method, path) pairs, weighted roughly as a registry sees them: pulls first."""
    found = [("GET", "/v2/"), ("GET", "/v2/_catalog")]
    for name in NAMES:
        found += [
            ("HEAD", f"/v2/{name}/manifests/latest"),
            ("GET", f"/v2/{name}/manifests/latest"),
            ("GET", f"/v2/{name}/manifests/{DIGEST}"),
            ("HEAD", f"/v2/{name}/blobs/{DIGEST}"),
            ("GET", f"/v2/{name}/blobs/{DIGEST}"),
            ("GET", f"/v2/{name}/blobs/{DIGEST}"),
            ("POST", f"/v2/{name}/blobs/uploads/"),
            ("PATCH", f"/v2/{name}/blobs/uploads/{UPLOAD}"),
            ("PUT", f"/v2/{name}/blobs/uploads/{UPLOAD}"),
            ("PUT", f"/v2/{name}/manifests/latest"),
            ("GET", f"/v2/{name}/tags/list"),
            ("GET", f"/v2/{name}/referrers/{DIGEST}"),
        ]
    return found


def handwritten(path: str, method: str) -> tuple[str | None, str | None, dict[str, str]] | None:
    found = match_route(path, method)
    return None if found is None else (found.handler, found.name, found.params)


async def _endpoint(request: Any) -> Response:
    return Response()


# One Route per handler, as a Starlette application would declare them. Starlette adds HEAD
# wherever GET is allowed.
_STARLETTE_ROUTES = [
    ("/v2/", "base", ["GET"]),
    ("/v2", "base", ["GET"]),
    ("/v2/_catalog", "catalog", ["GET"]),
    ("/v2/{name:path}/tags/list", "tags", ["GET"]),
    ("/v2/{name:path}/manifests/{reference}", "get_manifest", ["GET"]),
    ("/v2/{name:path}/manifests/{reference}", "put_manifest", ["PUT"]),
    ("/v2/{name:path}/manifests/{reference}", "delete_manifest", ["DELETE"]),
    ("/v2/{name:path}/blobs/uploads/", "start_upload", ["POST"]),
    ("/v2/{name:path}/blobs/uploads", "start_upload", ["POST"]),
    ("/v2/{name:path}/blobs/uploads/{upload}", "upload_status", ["GET"]),
    ("/v2/{name:path}/blobs/uploads/{upload}", "patch_upload", ["PATCH"]),
    ("/v2/{name:path}/blobs/uploads/{upload}", "finish_upload", ["PUT"]),
    ("/v2/{name:path}/blobs/uploads/{upload}", "cancel_upload", ["DELETE"]),
    ("/v2/{name:path}/blobs/{digest}", "get_blob", ["GET"]),
    ("/v2/{name:path}/blobs/{digest}", "delete_blob", ["DELETE"]),
    ("/v2/{name:path}/referrers/{digest}", "referrers", ["GET"]),
]


def starlette_matcher() -> Matcher:
    router = Router(
        routes=[
            Route(path, _endpoint, methods=methods, name=name)
            for path, name, methods in _STARLETTE_ROUTES
        ]
    )
    routes = router.routes

    def match(path: str, method: str) -> tuple[str | None, str | None, dict[str, str]] | None:
        # What Router.app does before it calls an endpoint: the first full match, else the
        # first route whose path matched (405).
        scope = {"type": "http", "path": path, "method": method, "root_path": ""}
        partial = None
        for route in routes:
            result, child = route.matches(scope)
            if result is Match.FULL:
                params = dict(child["path_params"])
                name = params.pop("name", None)
                return getattr(route, "name", None), name, params
            if result is Match.PARTIAL and partial is None:
                partial = child
        if partial is not None:
            params = dict(partial["path_params"])
            return None, params.pop("name", None), params
        return None

    return match


def best_of(matcher: Matcher, sample: list[tuple[str, str]], n: int, repeat: int) -> float:
    """Seconds for `n` matches, the best of `repeat` runs."""
    work = list(itertools.islice(itertools.cycle(sample), n))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for method, path in work:
            matcher(path, method)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="matches per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best one counts")
    args = parser.parse_args()
    sample = requests()
    starlette = starlette_matcher()
    for method, path in sample:
        ours, theirs = handwritten(path, method), starlette(path, method)
        if ours != theirs:
            raise SystemExit(f"matchers disagree on {method} {path}: {ours} != {theirs}")
    print(f"{len(sample)} representative requests, {args.n} matches, best of {args.repeat}")
    results = {}
    for label, matcher in (("hand-written", handwritten), ("starlette Router", starlette)):
        seconds = best_of(matcher, sample, args.n, args.repeat)
        results[label] = seconds
        print(f"{label:18} {seconds:7.3f} s  {seconds / args.n * 1e6:6.2f} us/match")
    ratio = results["starlette Router"] / results["hand-written"]
    print(f"starlette / hand-written: {ratio:.2f}x")


if __name__ == "__main__":
    main()
