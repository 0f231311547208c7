"""Turn a results file from bench/run.py into docs/PERFORMANCE.md and docs/performance.png.

    .venv/bin/python bench/report.py [bench/results/<timestamp>.json]

Without an argument it uses the newest file in bench/results. Everything in the page comes from
the results file, so the page always describes the run it shows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import summary  # noqa: E402

GOOD, BAD, NEUTRAL_GOOD, NEUTRAL_BAD = "#2e8b57", "#c0392b", "#8fbc8f", "#e6a19a"


def newest_results(results_dir: Path) -> Path:
    found = sorted(results_dir.glob("*.json"))
    if not found:
        raise SystemExit(f"no results in {results_dir}: run bench/run.py first")
    return found[-1]


def cargohold_is_better(entry: dict[str, Any]) -> bool:
    ratio = entry["ratio"]
    return bool(ratio >= 1.0 if entry["better"] == "higher" else ratio <= 1.0)


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Horizontal bars of cargohold / Distribution on a log axis; green where cargohold wins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [e for e in results["metrics"].values() if e.get("ratio")]
    labels = [f"{e['label']} ({e['better']} is better)" for e in entries]
    ratios = [e["ratio"] for e in entries]
    colours = []
    for e in entries:
        targeted = e["target_ratio"] is not None
        if cargohold_is_better(e):
            colours.append(GOOD if targeted else NEUTRAL_GOOD)
        else:
            colours.append(BAD if targeted else NEUTRAL_BAD)
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(entries) + 1.6))
    y = list(range(len(entries)))[::-1]
    ax.barh(y, [r - 1 for r in ratios], left=1, color=colours, height=0.7)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    low, high = min([*ratios, 0.5]), max([*ratios, 2.0])
    ax.set_xlim(low / 1.6, high * 1.6)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if low / 1.6 <= t <= high * 1.6]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_yticks(y, labels, fontsize=8)
    for yi, r in zip(y, ratios, strict=True):
        ax.text(r * (1.04 if r >= 1 else 0.96), yi, f"{r:.2f}", va="center",
                ha="left" if r >= 1 else "right", fontsize=8)  # fmt: skip
    settings = results["settings"]
    ax.set_xlabel("cargohold / Distribution 2.8 (median of each; log scale)")
    ax.set_title(
        f"cargohold vs Distribution 2.8 — {settings['size_mib']:g} MiB, "
        f"{settings['layers']} layers, medians of {settings['reps']}, {results['started']}\n"
        "dark: targeted in issue 5; green: cargohold at least as good",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _kv_table(rows: list[tuple[str, str]]) -> str:
    lines = ["| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def target_summary(results: dict[str, Any]) -> str:
    met: list[str] = []
    missed: list[str] = []
    for entry in results["metrics"].values():
        ok = summary.meets_target(entry)
        if ok is None:
            continue
        sign = "≥" if entry["better"] == "higher" else "≤"
        text = f"{entry['label']} ({entry['unit']}): {entry['ratio']:.2f} (target {sign} 1.0)"
        (met if ok else missed).append(text)
    lines = [f"Targets met: {len(met)} of {len(met) + len(missed)}."]
    if missed:
        lines += ["", "Not yet met:", *(f"- {t}" for t in missed)]
    if met:
        lines += ["", "Met:", *(f"- {t}" for t in met)]
    fractions = results.get("fraction_of_limit", {})
    push, pull = fractions.get("push_mb_s"), fractions.get("pull_mb_s")
    if push and pull:
        lines += [
            "",
            f"Further targets: pull ≥ 80 % of loopback TCP — cargohold "
            f"{100 * pull['fraction'][summary.CARGOHOLD]:.0f} %; push ≥ 80 % of min(SHA-256, "
            f"disk) — cargohold {100 * push['fraction'][summary.CARGOHOLD]:.0f} %.",
        ]
    return "\n".join(lines)


def render(results: dict[str, Any], results_name: str, chart_name: str) -> str:
    settings, machine, versions = results["settings"], results["machine"], results["versions"]
    machine_rows = [
        ("CPUs (`nproc`)", str(machine["nproc"])),
        ("CPU", str(machine["cpu"])),
        ("memory", f"{machine['memory_gib']} GiB"),
        ("kernel", str(machine["kernel"])),
        ("disk (data of both registries)", str(machine["disk"]).replace(", rotational", "")),
        ("Python", str(machine["python"])),
        ("Distribution", versions["distribution"]),
        ("skopeo", versions["skopeo"]),
        ("wrk", versions["wrk"].split(" Copyright")[0]),
        ("hey", versions.get("hey", "(not recorded)")),
        ("cargohold", f"commit {versions['cargohold']}"),
    ]
    idle = results.get("idle_rss_mib", {})
    idle_text = "; ".join(
        f"{summary.DISPLAY[name]} {v['start_mib']:.0f} MiB after start, "
        f"{v.get('end_mib', float('nan')):.0f} MiB at the end"
        for name, v in idle.items()
    )
    auth = results.get("auth", {})
    auth_text = "; ".join(f"{summary.DISPLAY[n]}: {a}" for n, a in auth.items()) or "not recorded"
    quick = " **(a --quick run: sizes too small to judge by)**" if settings["quick"] else ""
    return f"""# Performance: cargohold next to CNCF Distribution 2.8

<!-- Made by bench/report.py from bench/results/{results_name}: edit the generator, not this. -->

One run of `bench/run.py`{quick}, started {results["started"]}, finished {results["finished"]}:
{settings["reps"]} repetition(s) of each scenario per registry, the two registries alternating
(which one goes first swaps every repetition); every number is the median of the repetitions.
The ratio is cargohold / Distribution, so above 1 is better for rates and throughput and below 1
is better for latency and memory.

![ratios cargohold / Distribution]({chart_name})

## Results

{summary.results_table(results)}

Idle RSS: {idle_text}.

<details><summary>Every repetition (in run order)</summary>

{summary.samples_table(results)}

</details>

## Targets (issue 5)

{target_summary(results)}

## Machine limits, measured in the same run

{summary.limits_table(results)}

{summary.fraction_table(results) if "fraction_of_limit" in results else ""}

## Machine

{_kv_table(machine_rows)}

{summary.foreign_cpu_text(results)}
The machine may be shared: that is one reason the registries alternate and medians are reported.

## Command

```sh
apt-get install -y skopeo wrk hey docker-registry   # once, on a fresh Debian machine
{results["command"]}
.venv/bin/python bench/report.py    # this page and {chart_name}
```

## What is measured

- **Images**: generated by the harness as OCI layouts: {settings["layers"]} layers of random
  (incompressible) bytes totalling {settings["size_mib"]:g} MiB, uncompressed tar
  (`application/vnd.oci.image.layer.v1.tar`). Every repetition makes new images, and every push goes
  to a new repository, so nothing is deduplicated or mounted.
- **Push**: `skopeo copy --preserve-digests --dest-tls-verify=false oci:LAYOUT
  docker://127.0.0.1:PORT/bench/push-N:latest`, wall time of the whole copy; MB/s = 10⁶ bytes of
  layers, config and manifest per second. `--preserve-digests` keeps skopeo from gzipping the
  layers on the way, which would time skopeo's compressor instead of the registry.
- **Pull**: `skopeo copy docker://… oci:OUTDIR` of the image just pushed, into a fresh directory in
  memory (`/dev/shm`) so the client's disk is not what is measured.
- **Concurrent push**: {settings["concurrency"]} skopeo processes at once, each pushing its own
  image ({settings["size_mib"]:g} MiB in all), from the first start to the last exit.
- **Request rates**: a small image is pushed to `bench/hot`; manifest GET by tag with `wrk
  {settings["wrk"]}` (Lua script setting `Accept: application/vnd.oci.image.manifest.v1+json` and,
  when the registry needs it, `Authorization`); manifest HEAD by tag and blob HEAD with `hey` at the
  same connection count and duration, because wrk never completes a HEAD request whose response
  carries a Content-Length (its HTTP parser waits for a body that a HEAD response never has).
  p50/p99 are the clients' latency percentiles; more than 1 % non-2xx answers fails the run.
- **Peak RSS**: the server process and all its children, sampled every 50 ms during each scenario.
- **Distribution**: Debian's `docker-registry` run by hand with a config written by the harness:
  filesystem storage next to cargohold's data, `127.0.0.1` only, no auth, in-memory blob
  descriptor cache, `storage.delete.enabled: true`, log level warn, access log off.
- **cargohold**: `cargohold serve --host 127.0.0.1 --port PORT --data-dir DIR` from the checkout;
  /v2/ authentication in this run: {auth_text}.
- **Limits**: SHA-256 of one core (`hashlib` over a 64 MiB buffer), sequential write of 1 MiB
  chunks plus `fsync` on the data directory's filesystem, one loopback TCP connection between two
  Python processes with 4 MiB buffers; each repeated like the scenarios.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", type=Path, help="default: newest in bench/results")
    parser.add_argument("--markdown", type=Path, default=REPO / "docs" / "PERFORMANCE.md")
    parser.add_argument("--chart", type=Path, default=REPO / "docs" / "performance.png")
    args = parser.parse_args(argv)
    source = args.results or newest_results(BENCH / "results")
    results = json.loads(source.read_text())
    if results.get("version") != summary.RESULTS_VERSION:
        raise SystemExit(f"{source}: results version {results.get('version')} is not supported")
    has_ratios = len(results["servers"]) == 2
    if has_ratios:
        write_chart(results, args.chart)
    chart_name = os.path.relpath(args.chart, args.markdown.parent)
    if not has_ratios:
        chart_name = "(no chart: one registry only)"
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    text = render(results, source.name, chart_name)
    # bench/cluster.py's scale-out section comes from another run: keep it as it is.
    old = args.markdown.read_text() if args.markdown.exists() else ""
    begin, end = "<!-- cluster:begin -->", "<!-- cluster:end -->"
    if begin in old and end in old:
        kept = begin + old.split(begin, 1)[1].split(end, 1)[0] + end
        text = text.rstrip("\n") + "\n\n" + kept + "\n"
    args.markdown.write_text(text)
    print(f"wrote {args.markdown}" + (f" and {args.chart}" if has_ratios else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
