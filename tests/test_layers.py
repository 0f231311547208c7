"""The package's layers, checked on its imports (every import, `TYPE_CHECKING` ones included).

- `domain` is pure: it imports nothing of cargohold outside `cargohold.domain`.
- `service` and `http` reach the database and the blob storage only through the ports
  (`cargohold.ports`): they import neither SQLAlchemy nor `cargohold.metadata` nor
  `cargohold.storage`.
- `service` never imports `http`: the fronts call the services, not the other way round.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "cargohold"

ADAPTERS = ("sqlalchemy", "cargohold.metadata", "cargohold.storage")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`; `from x import y` also yields
    `x.y`, which may be a module."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            yield node.lineno, source
            for alias in node.names:
                yield node.lineno, f"{source}.{alias.name}"


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(layer: str, banned: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for line, name in imports(path):
            if any(within(name, b) for b in banned):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return sorted(set(found))


def test_the_package_is_where_the_checks_look() -> None:
    for layer in ("domain", "service", "http"):
        assert (PACKAGE / layer / "__init__.py").is_file(), PACKAGE / layer


def test_domain_imports_nothing_of_cargohold_outside_domain() -> None:
    found = []
    for path in sorted((PACKAGE / "domain").rglob("*.py")):
        for line, name in imports(path):
            if within(name, "cargohold") and not within(name, "cargohold.domain"):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("layer", ["service", "http"])
def test_service_and_http_reach_adapters_only_through_ports(layer: str) -> None:
    found = violations(layer, ADAPTERS)
    assert not found, "\n".join(found)


def test_service_never_imports_http() -> None:
    found = violations("service", ("cargohold.http",))
    assert not found, "\n".join(found)


def test_the_checks_see_the_imports_they_forbid() -> None:
    """The composition root wires the adapters in: its imports are what the layers may not do."""
    path = PACKAGE / "app.py"
    assert module_name(path) == "cargohold.app"
    names = {name for _, name in imports(path)}
    assert any(within(name, "cargohold.metadata") for name in names), names
    assert any(within(name, "cargohold.storage") for name in names), names
