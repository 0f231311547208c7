"""A file an analyzer cannot read costs that file, never the scan: a `package.json` nested far
deeper than Python's JSON decoder recurses, or an analyzer that fails, is skipped with its
reason noted, and every other file of every layer is still read."""

from __future__ import annotations

import io
from typing import IO

from cargohold.scanning import default_analyzers
from cargohold.scanning.layers import Entry, FileResult, LayerReader
from support.scan_images import File, compress, package_json, tar_layer

DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"name": "evil", "version": "1.0.0", "x": ' + DEEP_JSON + b"}"


def _layer(*files: File) -> IO[bytes]:
    blob, _ = compress(tar_layer(list(files)), "gzip")
    return io.BytesIO(blob)


def test_a_deeply_nested_package_json_is_skipped_and_noted() -> None:
    reader = LayerReader(default_analyzers())
    reader.add_layer(
        _layer(
            File("app/node_modules/deep/package.json", DEEP_JSON),
            File("app/node_modules/lodash/package.json", package_json("lodash", "4.17.20")),
        )
    )
    reader.add_layer(
        _layer(
            File("app/node_modules/evil/package.json", DEEP_OBJECT),
            File("usr/lib/node_modules/minimist/package.json", package_json("minimist", "1.2.5")),
        )
    )
    names = {(p.name, p.version) for p in reader.inventory().packages}
    assert names == {("lodash", "4.17.20"), ("minimist", "1.2.5")}
    assert [path for path, _ in reader.skipped] == [
        "app/node_modules/deep/package.json",
        "app/node_modules/evil/package.json",
    ]
    assert all("nests deeper than" in reason for _, reason in reader.skipped)


class Failing:
    """An analyzer with a bug: it fails on every file it wants."""

    def wants(self, entry: Entry) -> bool:
        return entry.path.endswith(".broken")

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        raise RecursionError("maximum recursion depth exceeded")


def test_an_analyzer_failure_skips_only_its_file() -> None:
    reader = LayerReader([Failing(), *default_analyzers()])
    reader.add_layer(
        _layer(
            File("srv/one.broken", b"x"),
            File("app/node_modules/lodash/package.json", package_json("lodash", "4.17.20")),
        )
    )
    assert [p.name for p in reader.inventory().packages] == ["lodash"]
    assert reader.skipped == [
        ("srv/one.broken", "RecursionError: maximum recursion depth exceeded")
    ]
