"""The load generators: skopeo for pushes and pulls, wrk and hey for request rates.

wrk measures GET. It cannot measure HEAD: its HTTP parser is never told that a HEAD response has no
body, so it waits for the Content-Length bytes that never come and completes no request at all.
HEAD is measured with hey (Go's HTTP client), at the same connection count and duration.

Every call is bounded by a timeout, talks only to 127.0.0.1, and raises ``ClientError`` with the
client's own output when it fails, so a broken registry stops the run instead of skewing it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from images import MANIFEST_MEDIA_TYPE, Image

SKOPEO_TIMEOUT_S = 900
WRK_MARK = "WRK_JSON "


class ClientError(RuntimeError):
    """A client exited badly or reported errors."""


def client_env(work_dir: Path) -> dict[str, str]:
    """The environment for skopeo: no proxies, no credentials from the user's own logins."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["REGISTRY_AUTH_FILE"] = str(work_dir / "auth.json")  # absent on purpose
    return env


def _skopeo(
    src: str,
    dest: str,
    *,
    env: dict[str, str],
    src_creds: str | None = None,
    dest_creds: str | None = None,
    retry_times: int = 0,
) -> list[str]:
    # --preserve-digests: skopeo would otherwise gzip uncompressed layers on the way to a registry,
    # timing its own compressor and changing every digest.
    command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests"]
    if retry_times:
        command += ["--retry-times", str(retry_times)]
    if src.startswith("docker://"):
        command.append("--src-tls-verify=false")
    if dest.startswith("docker://"):
        command.append("--dest-tls-verify=false")
    if src_creds:
        command += ["--src-creds", src_creds]
    if dest_creds:
        command += ["--dest-creds", dest_creds]
    return [*command, src, dest]


def _run(command: Sequence[str], env: dict[str, str], timeout: float) -> None:
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise ClientError(
            f"{' '.join(command)} exited with {result.returncode}:\n{result.stderr[-4000:]}"
        )


def push(
    image: Image, dest: str, *, env: dict[str, str], creds: str | None, retry_times: int = 0
) -> float:
    """Seconds for skopeo to copy ``image`` to ``docker://dest`` (retrying the copy up to
    ``retry_times`` times when it fails on the network)."""
    command = _skopeo(
        image.oci_ref, f"docker://{dest}", env=env, dest_creds=creds, retry_times=retry_times
    )
    started = time.perf_counter()
    _run(command, env, SKOPEO_TIMEOUT_S)
    return time.perf_counter() - started


def pull(
    src: str, out_dir: Path, *, env: dict[str, str], creds: str | None, retry_times: int = 0
) -> float:
    """Seconds for skopeo to copy ``docker://src`` into a new OCI layout at ``out_dir``."""
    command = _skopeo(
        f"docker://{src}",
        f"oci:{out_dir}:latest",
        env=env,
        src_creds=creds,
        retry_times=retry_times,
    )
    started = time.perf_counter()
    _run(command, env, SKOPEO_TIMEOUT_S)
    return time.perf_counter() - started


def push_concurrently(
    pairs: Sequence[tuple[Image, str]], *, env: dict[str, str], creds: str | None
) -> float:
    """Seconds from starting every ``(image, dest)`` push at once to the last one finishing."""
    started = time.perf_counter()
    processes = [
        (
            command,
            subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for command in (
            _skopeo(image.oci_ref, f"docker://{dest}", env=env, dest_creds=creds)
            for image, dest in pairs
        )
    ]
    failures: list[str] = []
    try:
        for command, process in processes:
            left = max(1.0, SKOPEO_TIMEOUT_S - (time.perf_counter() - started))
            _, stderr = process.communicate(timeout=left)
            if process.returncode != 0:
                failures.append(f"{' '.join(command)} exited with {process.returncode}:\n{stderr}")
    finally:
        for _, process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    elapsed = time.perf_counter() - started
    if failures:
        raise ClientError("\n".join(failures))
    return elapsed


# ---- wrk -----------------------------------------------------------------------------------------

_WRK_SCRIPT = """\
wrk.method = "{method}"
wrk.path = "{path}"
wrk.headers["Accept"] = "{accept}"
{auth}
function done(summary, latency, requests)
  io.write(string.format(
    '{mark}{{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
"""


def write_wrk_script(path: Path, *, method: str, url_path: str, auth_header: str | None) -> Path:
    """A wrk Lua script that sends one request shape and prints its summary as JSON."""
    auth = f'wrk.headers["Authorization"] = "{auth_header}"' if auth_header else ""
    path.write_text(
        _WRK_SCRIPT.format(
            method=method, path=url_path, accept=MANIFEST_MEDIA_TYPE, auth=auth, mark=WRK_MARK
        )
    )
    return path


@dataclass(frozen=True)
class LoadResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: dict[str, int]


def run_wrk(
    url: str, script: Path, *, threads: int, connections: int, duration_s: float
) -> LoadResult:
    """Run wrk against ``url`` and return its rate and latency percentiles."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s:g}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(WRK_MARK)]
    if result.returncode != 0 or not lines:
        raise ClientError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    summary = json.loads(lines[-1][len(WRK_MARK) :])
    errors = {k: int(summary[k]) for k in ("connect", "read", "write", "status", "timeout")}
    requests = int(summary["requests"])
    _check_errors(command, requests, errors)
    return LoadResult(
        requests_per_s=requests / (summary["duration_us"] / 1e6),
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        requests=requests,
        errors=errors,
    )


def _check_errors(command: Sequence[str], requests: int, errors: dict[str, int]) -> None:
    # Non-2xx answers or dropped connections make a rate meaningless: refuse more than 1 %.
    if requests == 0 or sum(errors.values()) > requests / 100:
        raise ClientError(f"{' '.join(command)}: {requests} requests, errors {errors}")


_HEY_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_HEY_PERCENTILE = re.compile(r"^\s*(\d+)% in ([\d.]+) secs", re.MULTILINE)
_HEY_COUNT = re.compile(r"^\s*\[(\d+)\]\s+(\d+)\s+responses", re.MULTILINE)
_HEY_ERROR = re.compile(r"^\s*\[(\d+)\]\s+\S", re.MULTILINE)


def run_hey(
    url: str,
    *,
    method: str,
    headers: dict[str, str],
    connections: int,
    duration_s: float,
) -> LoadResult:
    """Run hey (for HEAD, which wrk cannot do) and return its rate and latency percentiles."""
    command = ["hey", "-z", f"{duration_s:g}s", "-c", str(connections), "-t", "5", "-m", method]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    out = result.stdout
    rate = _HEY_RATE.search(out)
    if result.returncode != 0 or rate is None:
        raise ClientError(f"{' '.join(command)} failed:\n{out}\n{result.stderr}")
    percentiles = {int(p): float(s) * 1000 for p, s in _HEY_PERCENTILE.findall(out)}
    status_part, _, error_part = out.partition("Error distribution:")
    statuses = {int(code): int(n) for code, n in _HEY_COUNT.findall(status_part)}
    failed = sum(n for code, n in statuses.items() if not 200 <= code < 300)
    dropped = sum(int(n) for n in _HEY_ERROR.findall(error_part))
    requests = sum(statuses.values())
    errors = {"status": failed, "other": dropped}
    _check_errors(command, requests, errors)
    if 50 not in percentiles or 99 not in percentiles:
        raise ClientError(f"{' '.join(command)}: no latency distribution in\n{out}")
    return LoadResult(
        requests_per_s=float(rate.group(1)),
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
        requests=requests,
        errors=errors,
    )
