"""Fixtures every test directory shares: the async backend, the metadata databases and the
live servers.

`db_url` is the database of the services under test (SQLite; SQLite and PostgreSQL with the
`every_database` mark). Each PostgreSQL test gets a schema of its own (`t_<random>`, selected
through the connection's `search_path`) that is dropped afterwards, so tests never see each
other's rows. PostgreSQL being down is a failure,
never a skip: the suite claims to run on both databases.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from support.fixtures import LiveServers
from support.server import RegistryServer

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

# The tests' Docker engine: the `docker_host` and `docker` fixtures.
pytest_plugins = ["support.dockerd"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metadata.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections live in a fresh schema of their own."""
    schema = f"t_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}\n"
            "The metadata tests run on both SQLite and PostgreSQL; start PostgreSQL "
            "(the README's test command does) and run again.",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- the user's own AWS files ------------------------------------------------------------------

#: The user's AWS directory, as the AWS tools find it without AWS_* variables.
USER_AWS_DIR = Path(os.environ.get("HOME") or Path.home()) / ".aws"
_AWS_BEFORE = pytest.StashKey[dict[str, bytes]]()
_AWS_TMP = pytest.StashKey[Path]()


def aws_files_snapshot(directory: Path = USER_AWS_DIR) -> dict[str, bytes]:
    """Every file under `directory`, by relative path, with its bytes."""
    if not directory.is_dir():
        return {}
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    """Every AWS tool the tests start (servers, `aws`, boto3) reads and writes AWS files of the
    run's own, never `~/.aws`; what `~/.aws` holds is checked again when the run ends."""
    session.stash[_AWS_BEFORE] = aws_files_snapshot()
    scratch = Path(tempfile.mkdtemp(prefix="cargohold-tests-aws-"))
    session.stash[_AWS_TMP] = scratch
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(scratch / "credentials")
    os.environ["AWS_CONFIG_FILE"] = str(scratch / "config")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when `~/.aws` is not byte for byte what it was when the run started."""
    if _AWS_TMP in session.stash:
        shutil.rmtree(session.stash[_AWS_TMP], ignore_errors=True)
    if _AWS_BEFORE not in session.stash:
        return
    before, after = session.stash[_AWS_BEFORE], aws_files_snapshot()
    if before != after:
        changed = sorted(
            name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
        )
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"the test run changed {USER_AWS_DIR}: {', '.join(changed)}"
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- the database a test's services run on ---------------------------------------------------

BOTH_DATABASES = ["sqlite_url", "postgres_url"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "every_database: run each test of the module that uses `db_url` on SQLite and on "
        "PostgreSQL",
    )


@pytest.fixture
def db_url(request: pytest.FixtureRequest) -> str:
    """The metadata database of the services under test: SQLite unless the test asks for more,
    either with `@pytest.mark.parametrize("db_url", BOTH_DATABASES, indirect=True)` or, for
    every test of a module that uses it, with `pytestmark = pytest.mark.every_database`."""
    name = getattr(request, "param", "sqlite_url")
    url: str = request.getfixturevalue(name)
    return url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_url" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("every_database") is None:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        if "db_url" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return  # the test chose its databases itself
    metafunc.parametrize("db_url", BOTH_DATABASES, indirect=True)


# -- live servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServers]:
    """The module's live servers (see tests/support/fixtures.py), stopped when it ends."""
    servers = LiveServers(tmp_path_factory)
    try:
        yield servers
    finally:
        servers.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the log of every live server a failing test used to its report."""
    report = yield
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        for name, value in funcargs.items():
            if isinstance(value, RegistryServer):
                report.sections.append((f"cargohold server log (tail): {name}", value.log_tail()))
    return report
