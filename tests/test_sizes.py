"""The size limits of the code under src/: files, classes and functions small enough to read.

No file over 500 lines, no class over 25 methods, no function over 60 lines. Alembic migrations
are exempt: each is a frozen record of one schema change, read whole and never edited.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "cargohold"
EXEMPT = (SOURCE / "metadata" / "migrations",)

MAX_FILE_LINES = 500
MAX_CLASS_METHODS = 25
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return [
        path
        for path in sorted(SOURCE.rglob("*.py"))
        if not any(path.is_relative_to(folder) for folder in EXEMPT)
    ]


def _name(path: Path) -> str:
    return str(path.relative_to(SOURCE.parent))


def test_the_scan_sees_the_package() -> None:
    assert len(_modules()) > 50


def test_no_file_is_over_the_limit() -> None:
    long = {
        _name(path): lines
        for path in _modules()
        if (lines := path.read_text().count("\n")) > MAX_FILE_LINES
    }
    assert long == {}


def test_no_class_has_too_many_methods() -> None:
    large: dict[str, int] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                methods = [
                    item
                    for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                ]
                if len(methods) > MAX_CLASS_METHODS:
                    large[f"{_name(path)}:{node.name}"] = len(methods)
    assert large == {}


def test_no_function_is_over_the_limit() -> None:
    long: dict[str, int] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{_name(path)}:{node.lineno}:{node.name}"] = lines
    assert long == {}
