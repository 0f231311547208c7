"""Adapters that read what an image holds and what is known to be vulnerable in it.

`read_inventory(layers)` reads an image's layers (each once, as a stream) and answers its
operating system and packages; `scanning.osv` reads OSV advisories; `scanning.sbom` writes an
inventory as a CycloneDX SBOM.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from cargohold.domain.inventory import Inventory
from cargohold.scanning.distro import ApkAnalyzer, DpkgAnalyzer, OsReleaseAnalyzer, RpmAnalyzer
from cargohold.scanning.gobuildinfo import GoAnalyzer
from cargohold.scanning.languages import JavaAnalyzer, NpmAnalyzer, PythonAnalyzer
from cargohold.scanning.layers import Analyzer, LayerError, LayerReader


def default_analyzers() -> list[Analyzer]:
    # Order matters only where two could want one file: path-specific analyzers come before
    # the Go analyzer, which looks at every executable.
    return [
        OsReleaseAnalyzer(),
        DpkgAnalyzer(),
        ApkAnalyzer(),
        RpmAnalyzer(),
        PythonAnalyzer(),
        NpmAnalyzer(),
        JavaAnalyzer(),
        GoAnalyzer(),
    ]


def read_inventory(layers: Iterable[IO[bytes]]) -> Inventory:
    """The inventory of the filesystem the layers make, applied in order."""
    reader = LayerReader(default_analyzers())
    for layer in layers:
        reader.add_layer(layer)
    return reader.inventory()


__all__ = ["LayerError", "LayerReader", "default_analyzers", "read_inventory"]
