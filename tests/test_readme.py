"""The README's walk-throughs, run as a user runs them: the commands are read from README.md, in
its order, and only the port is changed (5000 becomes a free port).

The server is started by the README's own `cargohold serve` line, in a working directory of the
test's with `examples/` beside it, as a user with a HOME of their own (so `~/.aws`, podman's and
docker's logins are the test's) and no AWS or cargohold variables. The image the README calls
`spring-app:latest` is made beforehand in podman and in the tests' Docker engine (a Debian-like
root file system with a vulnerable glibc, so the scan finds something); the OSV records are put in
`~/osv/`. The README's `/etc/hosts` line for `*.localhost` goes into a private mount namespace's
`/etc/hosts`, as a user would add it. Blocks marked `<!-- readme-test: skip (why) -->` are not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support.clients import require_tool
from support.dockerd import DockerCli
from support.images import tar_bytes
from support.scan_images import dpkg_stanza, os_release
from support.server import free_port
from support.waiting import wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
OSV = Path(__file__).parent / "fixtures" / "osv" / "Debian"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\b")
README_PORT = "5000"
TIMEOUT = 240

#: What the walk-throughs must still show; a README that drops one fails here.
MUST_RUN = (
    "podman login",
    "podman push",
    "docker login",
    "docker push",
    "docker pull",
    "aws --profile cargohold ecr",
    'eval "$(cargohold admin credentials)"',
    "cargohold admin login-password",
    "aws sts get-caller-identity",
    "aws iam create-user",
    "aws iam create-role",
    "aws sts assume-role",
    "aws ecr put-registry-policy",
    "aws ecr set-repository-policy",
    "cargohold admin repository-policy delete",
    "cargohold admin registry-policy delete",
    "cargohold admin account create",
    "podman pull",
    "cargohold audit",
    "cargohold vulndb import",
    "aws ecr start-image-scan",
    "aws ecr describe-image-scan-findings",
    "cargohold sbom export",
    "cargohold events tail",
    "cargohold events targets",
)


@dataclass(frozen=True)
class Block:
    section: str
    language: str
    text: str
    skipped: bool


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of the README, with the heading they are under."""
    blocks: list[Block] = []
    section = ""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif line.startswith("```") and line.strip() != "```":
            language = line.strip("`").strip()
            # The marker, if any, is the line right above the fence.
            previous = lines[index - 1] if index > 0 else ""
            body: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            blocks.append(Block(section, language, "\n".join(body), bool(SKIP.search(previous))))
        index += 1
    return blocks


def port_substituted(text: str, port: int) -> str:
    return re.sub(rf"(?<=[:\s]){README_PORT}\b", str(port), text)


@dataclass
class Walkthrough:
    serve: str  # the README's serve line
    script: str  # every other sh block, in order
    hosts_line: str


def walkthrough(port: int) -> Walkthrough:
    blocks = readme_blocks(README.read_text())
    serve_lines = [
        line.split("#", 1)[0].strip()
        for block in blocks
        if block.language == "sh" and not block.skipped
        for line in block.text.splitlines()
        if line.startswith("cargohold serve")
    ]
    assert len(serve_lines) == 1, f"the README should start the server once: {serve_lines}"
    script: list[str] = []
    for block in blocks:
        if block.language != "sh" or block.skipped:
            continue
        lines = [
            line
            for line in block.text.splitlines()
            # The install line: this test runs in the installed venv.
            if not line.startswith(("cargohold serve", "python3 -m venv"))
        ]
        script.append(f"# --- {block.section}\n" + "\n".join(lines))
    hosts = [
        line
        for block in blocks
        if block.language == "text"
        for line in block.text.splitlines()
        if line.startswith("127.0.0.1 ") and ".localhost" in line
    ]
    assert len(hosts) == 1, "the README gives one /etc/hosts line for *.localhost"
    return Walkthrough(
        port_substituted(serve_lines[0], port),
        port_substituted("\n\n".join(script), port),
        hosts[0],
    )


def test_the_readme_is_read_as_the_test_expects() -> None:
    """The parsing the walk-through relies on: blocks, sections, skip markers."""
    blocks = readme_blocks(README.read_text())
    sections = {block.section for block in blocks if block.language == "sh"}
    assert {"Install and start", "Using it as ECR", "Credentials", "IAM and STS"} <= sections
    skipped = [block for block in blocks if block.skipped]
    assert all(block.language == "sh" for block in skipped)
    # The network, the suite itself, and what tests of their own run: ECS, the cluster, a second
    # server over HTTPS, one with metrics and JSON logs.
    assert len(skipped) <= 6, (
        "only what cannot run here (the network, the suite) or what its own test runs is skipped"
    )
    script = walkthrough(5400).script
    for command in MUST_RUN:
        assert command in script, f"the README's walk-throughs no longer run `{command}`"
    assert ":5000" not in script and "127.0.0.1:5400" in script


# -- the environment of the user ------------------------------------------------------------


def spring_app_rootfs() -> bytes:
    """A Debian 11 root file system whose glibc an advisory of tests/fixtures/osv affects."""
    status = dpkg_stanza("libc6", "2.31-13+deb11u5", source="glibc")
    return tar_bytes(
        {
            "etc/os-release": os_release("debian", "11", "Debian GNU/Linux 11 (bullseye)"),
            "var/lib/dpkg/status": status.encode(),
            "app/app.jar": b"spring boot, or something like it\n",
        }
    )


def user_environment(root: Path, docker: DockerCli) -> dict[str, str]:
    """A user's shell: their own HOME, the venv's commands on PATH, podman and docker with
    their own storage and logins, no AWS or cargohold variables."""
    home = root / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CARGOHOLD_", "REGISTRY_", "CONTAINERS_", "DOCKER_"))
    }
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    podman = root / "podman"
    for name in ("root", "runroot", "tmp"):
        (podman / name).mkdir(parents=True)
    (podman / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{podman / "runroot"}"\n'
        f'graphroot = "{podman / "root"}"\n'
    )
    (podman / "containers.conf").write_text(
        '[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n'
    )
    # No registry is marked insecure: the README's own --tls-verify=false must do it.
    (podman / "registries.conf").write_text("unqualified-search-registries = []\n")
    env.update(
        CONTAINERS_STORAGE_CONF=str(podman / "storage.conf"),
        CONTAINERS_CONF=str(podman / "containers.conf"),
        CONTAINERS_REGISTRIES_CONF=str(podman / "registries.conf"),
        REGISTRY_AUTH_FILE=str(podman / "auth.json"),
        TMPDIR=str(podman / "tmp"),
        DOCKER_HOST=docker.docker_host,
        DOCKER_CONFIG=str(docker.config_dir),
    )
    shutil.copytree(OSV, home / "osv")
    return env


@pytest.fixture
def built_image(docker: DockerCli, tmp_path: Path) -> Iterator[str]:
    """`spring-app:latest` in the tests' Docker engine: the busybox image, by the README's name."""
    docker.build_busybox(tmp_path / "context", tag="spring-app:latest")
    image_id = docker("image", "inspect", "--format", "{{.Id}}", "spring-app:latest").stdout
    yield image_id.strip()
    docker("rmi", image_id.strip(), check=False)


def test_the_readme_walkthroughs_run_as_written(
    tmp_path: Path, docker: DockerCli, built_image: str
) -> None:
    for tool in ("podman", "docker", "curl", "jq", "unshare"):
        require_tool(tool)
    port = free_port()
    steps = walkthrough(port)
    env = user_environment(tmp_path, docker)
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(REPO / "examples")
    rootfs = tmp_path / "spring-app.tar"
    rootfs.write_bytes(spring_app_rootfs())
    subprocess.run(
        ["podman", "import", str(rootfs), "spring-app:latest"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )

    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            ["bash", "-c", f"exec {steps.serve}"],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                httpx.get(f"{url}/v2/", timeout=1.0)
            except httpx.TransportError:
                return False
            return True

        wait_until(answering, timeout=30, message=lambda: log.read_text())
        banner = log.read_text()
        assert f"cargohold serving {url}" in banner
        assert "aws --profile cargohold ecr" in banner

        hosts = tmp_path / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n{steps.hosts_line}\n")
        script = tmp_path / "walkthrough.sh"
        script.write_text("set -euxo pipefail\n" + steps.script + "\n")
        done = subprocess.run(
            [
                "unshare",
                "--mount",
                "--",
                "bash",
                "-c",
                f'mount --bind "{hosts}" /etc/hosts && exec bash "{script}"',
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, (
            f"the README's walk-through failed (exit {done.returncode}):\n"
            f"--- trace (end) ---\n{done.stderr[-8000:]}\n--- output (end) ---\n"
            f"{done.stdout[-3000:]}\n--- server log (end) ---\n{log.read_text()[-3000:]}"
        )
        out = done.stdout
        assert out.count("Login Succeeded") >= 3  # podman, docker, podman as account B
        assert '"tags":["1.0"]' in out.replace(" ", "")  # account B read A's tags over curl
        assert re.search(r"imported \d+ new", out)
        findings = re.findall(r'"name": "(DSA-[0-9-]+|CVE-[0-9-]+)"', out)
        assert findings, "the scan of spring-app found its vulnerable glibc"
        # The events of the walk-through, as `events tail` printed them.
        assert '["ECR Image Action","PUSH","spring-boot-app","1.0"]' in out
        assert re.search(r'\["ECR Image Scan","COMPLETE","[a-z/-]+",', out)
        sbom = json.loads((work / "app.cdx.json").read_text())
        assert sbom["bomFormat"] == "CycloneDX"
        assert any(c.get("name") == "libc6" for c in sbom.get("components", []))
        config = (tmp_path / "home" / ".aws" / "config").read_text()
        assert config.count(f"endpoint_url = {url}") == 3
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            code = server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
            raise
        docker("rmi", f"127.0.0.1:{port}/spring-boot-app:1.1", check=False)
    assert code == 0, log.read_text()[-3000:]


# -- what the documents name exists ---------------------------------------------------------

DOCUMENTS = [README, REPO / "bench" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
RELATIVE_PATH = re.compile(r"`(\.\./[^`\s]+)`")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_documents_link_only_what_ships(document: Path) -> None:
    text = document.read_text()
    targets = [t for t in LINK.findall(text) if not t.startswith(("http://", "https://"))]
    targets += RELATIVE_PATH.findall(text)
    missing = [t for t in targets if not (document.parent / t).exists()]
    assert not missing, f"{document.name} names files that are not in the repository: {missing}"


def test_the_files_the_readme_uses_are_in_examples() -> None:
    named = set(re.findall(r"file://examples/([\w.-]+)", README.read_text()))
    assert {"trust.json", "pull-from-b.json", "registry.json"} <= named
    for name in named:
        json.loads((REPO / "examples" / name).read_text())


def test_every_cargohold_variable_is_documented() -> None:
    from dataclasses import fields

    from cargohold.config import Config, StorageConfig

    variables = {f"CARGOHOLD_{f.name.upper()}" for f in fields(Config) if f.name != "storage"}
    variables |= {f"CARGOHOLD_STORAGE_{f.name.upper()}" for f in fields(StorageConfig)}
    for tree in (REPO / "src", REPO / "bench"):
        for path in tree.rglob("*.py"):
            variables |= set(re.findall(r"CARGOHOLD_[A-Z][A-Z_]*[A-Z]", path.read_text()))
    # What the tests read from their environment (their other CARGOHOLD_ names are examples of
    # unknown keys, or settings of the servers they start).
    read = re.compile(r"environ(?:\.get\(|\[)\s*\"(CARGOHOLD_\w+)\"")
    for path in (REPO / "tests").rglob("*.py"):
        variables |= set(read.findall(path.read_text()))
    text = README.read_text()
    undocumented = sorted(v for v in variables if v not in text)
    assert not undocumented, f"README.md does not document {undocumented}"
