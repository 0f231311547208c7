"""The scale-out section of docs/PERFORMANCE.md and its chart, from a results file of
bench/cluster.py (`bench/cluster.py --report FILE`); every sentence about what limits a rate is
written from the figures measured in that run."""

from __future__ import annotations

import os
import random
import statistics
from pathlib import Path
from typing import Any

COLUMNS = {
    "push_mb_s": ("push", "MB/s"),
    "pull_mb_s": ("pull", "MB/s"),
    "concurrent_push_mb_s": ("concurrent pushes", "MB/s"),
    "aggregate_pull_mb_s": ("concurrent pulls, aggregate", "MB/s"),
    "manifest_get_per_s": ("manifest GET by tag", "req/s"),
}
BEGIN, END = "<!-- cluster:begin -->", "<!-- cluster:end -->"


def render(document: dict[str, Any], source: str, chart: str) -> str:
    """The scale-out section of docs/PERFORMANCE.md (kept by bench/report.py)."""
    rows = {row["target"]: row for row in document["results"]}
    settings = document["settings"]
    rounds = len(rows["cargohold-1"].get("concurrent_push_rounds", [0]))
    lines = [
        BEGIN,
        "## Scale-out: S3 storage and several nodes",
        "",
        f"`bench/cluster.py` ({source}): Distribution 2.8 with its S3 driver, cargohold with one",
        "node, and three cargohold nodes behind HAProxy (round-robin, `/health/ready` checks),",
        "all storing blobs in one SeaweedFS (`weed server -s3`) on this machine"
        + (
            " (its volume compaction off during the run: it would land on whichever runs were "
            "under way)"
            if document.get("store", {}).get("vacuum") is False
            else ""
        )
        + "; cargohold's",
        "metadata in PostgreSQL; each node one worker process (the default). Blob GETs redirect",
        "to the store in both registries. Image: the same one for Distribution and one node,",
        f"{float(settings['size_mib']):g} MiB in {settings['layers']} layers; "
        f"{settings['concurrency']} concurrent pushes of 1/{settings['concurrency']} of it each; "
        f"{settings['pullers']} concurrent pulls of the image; manifest GETs by wrk "
        f"(2 threads, 64 connections, {float(settings['wrk_duration']):g} s). "
        + (
            f"Push, pull, concurrent pushes and concurrent pulls: {rounds} rounds; "
            "in each round after the first, each scenario runs on Distribution and on one node "
            "back to back, the two taking turns at going first, each run starting after a "
            f"`sync`{settle_clause(document)}, each pull after one of the same image that is not "
            "measured (so that the store serves it from memory for both); each round pushes a "
            "new image. "
            + series_clause(rows)
            + "Other figures, and all of the three nodes', one run each."
            if "push_rounds" in rows["cargohold-1"]
            else f"Concurrent pushes and pulls: the median of {rounds} rounds, Distribution and "
            "one node taking turns; other figures one run each."
        ),
        "",
        f"![cargohold / Distribution on S3]({chart})",
        "",
        "| metric | unit | Distribution | cargohold, 1 node | 3 nodes | 1 node / Distribution "
        "| 3 nodes / 1 node |",
        "|---|---|---|---|---|---|---|",
    ]
    one, three, dist = rows["cargohold-1"], rows["cargohold-3"], rows["distribution"]
    for key, (label, unit) in COLUMNS.items():
        lines.append(
            f"| {label} | {unit} | {dist[key]:,.1f} | {one[key]:,.1f} | {three[key]:,.1f} "
            f"| {one[key] / dist[key]:.2f} | {three[key] / one[key]:.2f} |"
        )
    rss = ", ".join(f"{v:g}" for v in three["peak_rss_mib_per_node"])
    lines.append(
        f"| peak RSS per node | MiB | {dist['peak_rss_mib_per_node'][0]:g} "
        f"| {one['peak_rss_mib_per_node'][0]:g} | {rss} | | |"
    )
    for key, label in (
        ("push_rounds", "Pushes"),
        ("pull_rounds", "Pulls"),
        ("concurrent_push_rounds", "Concurrent pushes"),
        ("aggregate_pull_rounds", "Concurrent pulls"),
    ):
        if key in one and key in dist:
            rounds_of = {
                name: ", ".join(f"{v:.1f}" for v in row[key]) for name, row in rows.items()
            }
            lines += [
                "",
                f"{label}, round by round (MB/s): Distribution {rounds_of['distribution']}; "
                f"one node {rounds_of['cargohold-1']}{paired_ratios(dist[key], one[key])}.",
            ]
            failures = key.replace("_rounds", "_failures")
            for name, row in rows.items():
                for failure in row.get(failures, []):
                    lines.append(f"{label}: a run on {name} failed, left out ({failure}).")
    lines += series_lines(rows)
    if document.get("kill"):
        lines += ["", kill_sentence(document["kill"])]
    lines += cpu_section(document)
    command = (
        f"bench/cluster.py --size-mib {float(settings['size_mib']):g} "
        f"--layers {settings['layers']} --concurrency {settings['concurrency']} "
        f"--pullers {settings['pullers']}"
        + (f" --rounds {settings['rounds']}" if "rounds" in settings else "")
        + (f" --pull-pairs {settings['pull_pairs']}" if "pull_pairs" in settings else "")
        + (" --kill" if document.get("kill") else "")
        + (f" --node-cores {float(settings['node_cores']):g}" if document.get("capped") else "")
    )
    met = [
        f"{label} {one[key] / dist[key]:.2f}×"
        for key, (label, _) in COLUMNS.items()
        if one[key] < dist[key]
    ]
    lines += [
        "",
        f"Command: `.venv/bin/python {command}`.",
        "",
        NOTES.strip(),
        "",
        "In this run: one node below Distribution on "
        + (", ".join(met) if met else "no rate")
        + "; "
        + scale_verdict(document),
        END,
        "",
    ]
    return "\n".join(lines)


def series_clause(rows: dict[str, dict[str, Any]]) -> str:
    """Which figures are the medians of the rounds and which of the pull series."""
    pairs = len(rows["cargohold-1"].get("pull_series", []))
    if not pairs:
        return "The medians are reported. "
    return (
        "The push rates are the rounds' medians. The pull rates are the medians of "
        f"{pairs} more runs of each pull scenario after every push, in pairs taking turns at "
        "going first: with redirects the bytes come from the store, and a pull's time varies "
        "from one run to the next by more than the registries differ, so the rounds alone "
        "are too few to tell them apart. "
    )


def series_lines(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The pull series, pair by pair: one node's rate over Distribution's, its median and how
    far that median can be trusted (a bootstrap over the pairs)."""
    lines = []
    dist, one = rows["distribution"], rows["cargohold-1"]
    for key, label in (("pull_series", "Pulls"), ("aggregate_pull_series", "Concurrent pulls")):
        if not dist.get(key) or not one.get(key):
            continue
        ratios = [
            mine / theirs
            for theirs, mine in zip(dist[key], one[key], strict=True)
            if theirs is not None and mine is not None
        ]
        low, high = bootstrap_median(ratios)
        ahead = sum(ratio >= 1.0 for ratio in ratios)

        def listed(values: list[float | None]) -> str:
            return ", ".join("failed" if v is None else f"{v:.1f}" for v in values)

        lines += [
            "",
            f"{label} after every push, in {len(dist[key])} pairs (MB/s): Distribution "
            f"{listed(dist[key])}; one node {listed(one[key])}. One node / Distribution, pair "
            f"by pair: {', '.join(f'{r:.2f}' for r in ratios)}; median "
            f"{statistics.median(ratios):.2f}, 95% interval {low:.2f}–{high:.2f} (bootstrap "
            f"of the pairs' median); one node ahead in {ahead} of {len(ratios)} pairs.",
        ]
    return lines


def bootstrap_median(values: list[float], resamples: int = 10_000) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the median of `values` resampled with replacement
    (a fixed seed, so that a report is the same each time it is written)."""
    draw = random.Random(0)
    medians = sorted(
        statistics.median(draw.choices(values, k=len(values))) for _ in range(resamples)
    )
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def settle_clause(document: dict[str, Any]) -> str:
    """How the measured runs started: on an idle machine, or how many did not."""
    settle = document.get("settle")
    if settle is None:
        return " on an idle machine"
    if not settle["timed_out"]:
        return f" on an idle machine (all {settle['runs']} runs)"
    return (
        f", on an idle machine except in {settle['timed_out']} of "
        f"{settle['runs']} runs, which waited 20 s for one in vain"
    )


def paired_ratios(distribution: list[float], one: list[float]) -> str:
    """One node's rate over Distribution's, round by round, when every round of both ran."""
    if len(distribution) != len(one):
        return ""
    ratios = ", ".join(
        f"{mine / theirs:.2f}" for mine, theirs in zip(one, distribution, strict=True)
    )
    return f" (one node / Distribution: {ratios})"


def kill_sentence(kill: dict[str, Any]) -> str:
    """What the `--kill` run saw: times, how many skopeo runs each copy took, the digest."""

    def runs(phase: str) -> str:
        found = kill.get(f"{phase}_skopeo_runs", ["ok"])
        if found == ["ok"]:
            return "one skopeo run"
        failed = "; ".join(
            f"`{each.rsplit(': ', 1)[-1].strip(chr(34))}`" for each in found if each != "ok"
        )
        outcome = "the last completed" if found[-1] == "ok" else "NONE completed"
        return f"{len(found)} skopeo runs ({outcome}; the others failed with {failed})"

    return (
        f"With `--kill`, the image was pushed through HAProxy in "
        f"{kill['push_s_with_a_node_killed']} s while one node was SIGKILLed ({runs('push')}), "
        f"and pulled in {kill['pull_s_with_a_node_killed']} s while another was "
        f"({runs('pull')}); skopeo's own retries (`--retry-times`) cover a connection reset "
        "but not a broken pipe. The pulled manifest digest "
        + ("matched." if kill["pulled_digest_matches"] else "did NOT match.")
    )


def _cpu_row(label: str, rate: float, cpu: dict[str, Any]) -> str:
    available = cpu["seconds"] * cpu["cores"]
    ours = sum(cpu.get(f"{name}_cpu_s", 0) for name in ("registry", "store", "balancer", "clients"))
    rest = max(0.0, cpu["machine_busy"] * available - ours)
    return (
        f"| {label} | {rate:,.1f} | {cpu['seconds']:g} | {cpu['registry_cpu_s']:g} "
        f"| {cpu['store_cpu_s']:g} | {cpu.get('balancer_cpu_s', 0):g} | {cpu['clients_cpu_s']:g} "
        f"| {rest:,.1f} | {available:,.0f} | {cpu['machine_busy']:.0%} |"
    )


def cpu_section(document: dict[str, Any]) -> list[str]:
    """Where the CPU went in the concurrent scenarios, when the run measured it."""
    rows = {row["target"]: row for row in document["results"]}
    one, three, dist = rows["cargohold-1"], rows["cargohold-3"], rows["distribution"]
    if "aggregate_pull_cpu" not in one:
        return []
    lines = [
        "",
        "Where the CPU went (CPU seconds over the scenario; registry: its processes, the three",
        "nodes together for 3 nodes; clients: the skopeo processes; rest: every other process",
        "(PostgreSQL, the kernel's own threads, other users of the machine); available: wall",
        "time × cores). One registry's run and another's see different other load, which is",
        "why a single run's ratio can swing either way; every throughput scenario takes turns",
        "for that reason.",
        "",
        "| scenario | MB/s | wall s | registry | store | HAProxy | clients | rest | available "
        "| machine busy |",
        "|---|---|---|---|---|---|---|---|---|---|",
        _cpu_row(
            "concurrent pushes, Distribution (round 1)",
            dist["concurrent_push_rounds"][0],
            dist["concurrent_push_cpu"],
        ),
        _cpu_row(
            "concurrent pushes, 1 node (round 1)",
            one["concurrent_push_rounds"][0],
            one["concurrent_push_cpu"],
        ),
        _cpu_row(
            "aggregate pull, redirect, 1 node (round 1)",
            one["aggregate_pull_rounds"][0],
            one["aggregate_pull_cpu"],
        ),
        _cpu_row(
            "aggregate pull, redirect, 3 nodes",
            three["aggregate_pull_mb_s"],
            three["aggregate_pull_cpu"],
        ),
    ]
    for target, label in (("cargohold-1", "1 node"), ("cargohold-3", "3 nodes")):
        found = document.get("streaming", {}).get(target)
        if found:
            lines.append(
                _cpu_row(
                    f"aggregate pull, streaming, {label}",
                    found["aggregate_pull_mb_s"],
                    found["aggregate_pull_cpu"],
                )
            )
    capped = document.get("capped") or {}
    for target, label in (("cargohold-1", "1 node"), ("cargohold-3", "3 nodes")):
        if capped.get(target, {}).get("rounds"):
            lines.append(
                _cpu_row(
                    f"aggregate pull, streaming, {label}, each capped at "
                    f"{capped['node_cores']:g} core (round 1)",
                    capped[target]["rounds"][0],
                    capped[target]["cpu"][0],
                )
            )
    return lines


def scale_verdict(document: dict[str, Any]) -> str:
    """Three nodes' aggregate pull against one node's, in both modes, and what the CPU
    figures say about the target."""
    rows = {row["target"]: row for row in document["results"]}
    one, three = rows["cargohold-1"], rows["cargohold-3"]
    scale = three["aggregate_pull_mb_s"] / one["aggregate_pull_mb_s"]
    text = f"three nodes' aggregate pull {scale:.2f}× one node's with redirects"
    streaming = document.get("streaming", {})
    if streaming:
        s1, s3 = streaming["cargohold-1"], streaming["cargohold-3"]
        ratio = s3["aggregate_pull_mb_s"] / s1["aggregate_pull_mb_s"]
        node_share = (
            s1["aggregate_pull_cpu"]["registry_cpu_s"] / s1["aggregate_pull_cpu"]["seconds"]
        )
        text += (
            f", {ratio:.2f}× with `redirect = false` ({s1['aggregate_pull_mb_s']:,.1f} → "
            f"{s3['aggregate_pull_mb_s']:,.1f} MB/s; the one node's process used "
            f"{node_share:.0%} of a core)"
        )
    if "aggregate_pull_cpu" not in one:
        return text + "."
    cpu = one["aggregate_pull_cpu"]
    busy = cpu["machine_busy"]
    store_share = cpu["store_cpu_s"] / (cpu["seconds"] * cpu["cores"])
    available = cpu["seconds"] * cpu["cores"]
    ours = cpu["registry_cpu_s"] + cpu["store_cpu_s"] + cpu["clients_cpu_s"]
    text += (
        f". With one node and redirects, the machine's {cpu['cores']} cores were already "
        f"{busy:.0%} busy during the aggregate pull ({ours / available:.0%} in the bench's own "
        f"processes: SeaweedFS {store_share:.0%}, skopeo {cpu['clients_cpu_s'] / available:.0%}, "
        f"the node {cpu['registry_cpu_s'] / available:.0%}; the rest PostgreSQL, the kernel "
        "and other users)"
    )
    if scale < 1.5 and busy >= 0.85:
        text += (
            ": more nodes on the same cores have no CPU to add, so three nodes cannot pull "
            "1.5× one node's on one machine of this size when every process shares it."
        )
    else:
        text += "."
    return text + capped_verdict(document)


def capped_verdict(document: dict[str, Any]) -> str:
    """What the run with each node capped below its share of the machine shows."""
    capped = document.get("capped") or {}
    if "cargohold-1" not in capped:
        return ""
    one, three = capped["cargohold-1"], capped["cargohold-3"]
    failures = [f for entry in (one, three) for f in entry.get("failures", [])]
    failed = (
        f" With each node capped at {capped['node_cores']:g} core, {len(failures)} aggregate-pull "
        f"runs failed ({failures[0]})"
        if failures
        else ""
    )
    if "aggregate_pull_mb_s" not in one or "aggregate_pull_mb_s" not in three:
        return failed + "."
    ratio = three["aggregate_pull_mb_s"] / one["aggregate_pull_mb_s"]
    rounds = len(one["rounds"])
    return (
        f" With each node capped at {capped['node_cores']:g} core (a control group: nodes on "
        "small machines of their own, the store and the clients keeping the rest), streaming "
        f"aggregate pulls went from {one['aggregate_pull_mb_s']:,.1f} MB/s through one node to "
        f"{three['aggregate_pull_mb_s']:,.1f} through three, {ratio:.2f}× (medians of {rounds} "
        "rounds taken in turns"
        + (f", {len(failures)} failed runs left out" if failures else "")
        + "): "
        + (
            "the 1.5× target holds where the nodes are what limits the pull."
            if ratio >= 1.5
            else "below the 1.5× target."
        )
    )


NOTES = """
Targets: every rate of one node at least Distribution's, and three nodes' aggregate pull at
least 1.5 times one node's. With redirects, pull bytes come from SeaweedFS, not from the
nodes, which answer only the manifest and the redirects; with `redirect = false` the nodes
stream every byte from the store, so that is where more nodes could show. A pull with
redirects moves the same bytes of the same image from the same store for both registries,
which answer about ten requests each (the node's own CPU during the pulls is in the table
above); the objects differ in how they were uploaded (cargohold's in 8 MiB parts, then copied
to the blob's key; Distribution's in 32 MiB parts). Every process here (store, nodes, HAProxy,
PostgreSQL, the skopeo clients) shares this machine's cores.
"""


def write_report(document: dict[str, Any], source: str, markdown: Path, chart: Path) -> None:
    write_chart(document, chart)
    block = render(document, source, os.path.relpath(chart, markdown.parent))
    text = markdown.read_text() if markdown.exists() else ""
    if BEGIN in text and END in text:
        before, _, rest = text.partition(BEGIN)
        _, _, after = rest.partition(END)
        text = before + block.rstrip("\n") + after
    else:
        text = text.rstrip("\n") + "\n\n" + block
    markdown.write_text(text)


def write_chart(document: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {row["target"]: row for row in document["results"]}
    labels = [label for label, _ in COLUMNS.values()]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.38
    for offset, (target, name) in enumerate(
        (("cargohold-1", "cargohold, 1 node"), ("cargohold-3", "cargohold, 3 nodes"))
    ):
        ratios = [rows[target][key] / rows["distribution"][key] for key in COLUMNS]
        positions = [i + (offset - 0.5) * width for i in range(len(labels))]
        ax.bar(positions, ratios, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), labels, rotation=15, fontsize=8)
    ax.set_ylabel("× Distribution (S3)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(results: list[dict[str, Any]]) -> None:
    columns = [
        "push_mb_s",
        "pull_mb_s",
        "concurrent_push_mb_s",
        "aggregate_pull_mb_s",
        "manifest_get_per_s",
        "peak_rss_mib_per_node",
    ]
    print("| target | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in results:
        cells = [f"{row[c]:.1f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        print(f"| {row['target']} | " + " | ".join(cells) + " |")
