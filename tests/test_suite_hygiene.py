"""The test suite's own rules, checked on its source.

Every test checks something: its body (or a helper of its own module that it calls, however
deep) holds an `assert`, a `pytest.raises`/`pytest.warns`/`pytest.fail`, or a call to a checking
helper (`assert_*`, `expect_*`, `check_*`, or a wait of tests/support/waiting.py, which fails at
its deadline).

No test sleeps to order events: code under tests/ waits for an event the code signals, or polls
through tests/support/waiting.py with a deadline. Anything else that must sleep is listed in
SLEEPS_ALLOWED with the reason.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent

CHECKING_PREFIXES = ("assert_", "expect_", "check_")
CHECKING_CALLS = {"raises", "warns", "fail", "wait_until", "wait_until_async", "wait_for_event"}

# Tests that check what they claim without an assertion of their own, and why.
UNCHECKED_ALLOWED: dict[tuple[str, str], str] = {
    (
        "auth/test_sigv4.py",
        "test_clock_skew_within_fifteen_minutes_is_tolerated_both_ways",
    ): "verify() raises on a signature it refuses: that it returns is what the test proves",
    (
        "auth/test_sigv4.py",
        "test_compact_comma_separated_components_are_accepted",
    ): "verify() raises on a signature it refuses: that it returns is what the test proves",
}

SLEEP_MODULES = {"time", "asyncio", "anyio", "trio"}

# Files under tests/ that may call a sleep directly, and why.
SLEEPS_ALLOWED: dict[str, str] = {
    "support/waiting.py": "the shared waits: the pause between two polls of a deadline-bound wait",
}


def python_files(pattern: str) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(TESTS.rglob(pattern)):
        yield path.relative_to(TESTS).as_posix(), ast.parse(path.read_text(), str(path))


def called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


Function = ast.FunctionDef | ast.AsyncFunctionDef


def checks_directly(function: Function) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            name = (called_name(node) or "").lstrip("_")
            if name in CHECKING_CALLS or name.startswith(CHECKING_PREFIXES):
                return True
    return False


def calls(function: Function) -> set[str]:
    return {
        name
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and (name := called_name(node)) is not None
    }


def checking_helpers(module: ast.Module) -> set[str]:
    """Names of the module's functions and methods that check, themselves or through another
    function of the module that does."""
    functions: dict[str, list[Function]] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions.setdefault(node.name, []).append(node)
    checking = {name for name, defs in functions.items() if any(checks_directly(f) for f in defs)}
    changed = True
    while changed:
        changed = False
        for name, defs in functions.items():
            if name not in checking and any(calls(f) & checking for f in defs):
                checking.add(name)
                changed = True
    return checking


def unchecked_tests() -> list[str]:
    found = []
    for path, module in python_files("test_*.py"):
        checking = checking_helpers(module)
        for node in ast.walk(module):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not node.name.startswith("test_") or (path, node.name) in UNCHECKED_ALLOWED:
                continue
            if not (checks_directly(node) or calls(node) & checking):
                found.append(f"tests/{path}:{node.lineno} {node.name}")
    return found


def sleeps(module: ast.Module) -> Iterator[int]:
    """Lines calling `time.sleep`, `asyncio.sleep`, `anyio.sleep` (or `trio.sleep`), however
    imported."""
    imported = {
        alias.asname or alias.name
        for node in ast.walk(module)
        if isinstance(node, ast.ImportFrom) and node.module in SLEEP_MODULES
        for alias in node.names
        if alias.name == "sleep"
    }
    for node in ast.walk(module):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "sleep"
            and isinstance(func.value, ast.Name)
            and func.value.id in SLEEP_MODULES
        ) or (isinstance(func, ast.Name) and func.id in imported):
            yield node.lineno


def test_every_test_checks_something() -> None:
    offenders = unchecked_tests()
    assert not offenders, (
        "these tests assert nothing (no assert, pytest.raises/warns/fail, or assert_*/expect_*/"
        "check_* helper, directly or through a helper of their module):\n" + "\n".join(offenders)
    )


def test_allowed_unchecked_tests_exist() -> None:
    names = {
        (path, node.name)
        for path, module in python_files("test_*.py")
        for node in ast.walk(module)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assert set(UNCHECKED_ALLOWED) <= names, set(UNCHECKED_ALLOWED) - names


def test_no_test_sleeps_to_order_events() -> None:
    offenders = [
        f"tests/{path}:{line}"
        for path, module in python_files("*.py")
        if path not in SLEEPS_ALLOWED
        for line in sleeps(module)
    ]
    assert not offenders, (
        "sleeps under tests/ (wait for an event, or poll with tests/support/waiting.py):\n"
        + "\n".join(offenders)
    )


def test_the_rules_see_what_they_look_for() -> None:
    module = ast.parse(
        "import time\n"
        "from asyncio import sleep as nap\n"
        "def helper():\n    assert True\n"
        "def indirect():\n    helper()\n"
        "def test_checks():\n    indirect()\n"
        "async def test_sleeps():\n    time.sleep(1)\n    await nap(1)\n"
    )
    assert checking_helpers(module) >= {"helper", "indirect", "test_checks"}
    assert "test_sleeps" not in checking_helpers(module)
    assert list(sleeps(module)) == [10, 11]


SCRATCH_TESTS = """
from pathlib import Path

from cargohold import admin
from cargohold.config import load


def test_a_first_start_writes_a_profile(tmp_path: Path) -> None:
    admin.first_start(load(overrides={"data_dir": str(tmp_path / "data")}, environ={}))


def test_something_that_writes_the_users_own_files() -> None:
    if Path.home().joinpath("touch-aws").exists():
        Path.home().joinpath(".aws", "config").write_text("[changed]\\n")
"""


def run_as_user(tmp_path: Path, *, touch: bool) -> tuple[subprocess.CompletedProcess[str], Path]:
    """pytest, with the suite's conftest, on SCRATCH_TESTS, as a user with AWS files of their
    own in HOME and no AWS_* variables."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    for name, data in USERS_AWS_FILES.items():
        (home / ".aws" / name).write_bytes(data)
    if touch:
        (home / "touch-aws").write_text("")
    scratch = tmp_path / "test_scratch.py"
    scratch.write_text(SCRATCH_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CARGOHOLD_"))}
    env["HOME"] = str(home)
    repo = TESTS.parent
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-c", str(repo / "pyproject.toml"), "--rootdir", str(repo), "-p", "conftest"]
    done = subprocess.run(
        [*command, str(scratch)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, home / ".aws"


USERS_AWS_FILES = {
    "credentials": b"[default]\naws_access_key_id = AKIAMINE\n",
    "config": b"[x]\n",
}


def test_a_run_leaves_the_users_aws_files_byte_for_byte(tmp_path: Path) -> None:
    done, aws = run_as_user(tmp_path, touch=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
    assert {p.name: p.read_bytes() for p in aws.iterdir()} == USERS_AWS_FILES


def test_a_run_that_changes_the_users_aws_files_fails(tmp_path: Path) -> None:
    done, aws = run_as_user(tmp_path, touch=True)
    assert "2 passed" in done.stdout
    assert done.returncode == 1
    assert f"the test run changed {aws}: config" in done.stdout
