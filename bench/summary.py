"""The metrics a run reports, their medians and ratios, and the Markdown tables both scripts print.

A results file is plain JSON so any tool can read it; this module is the one place that knows its
shape (``RESULTS_VERSION``) and how to render it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Literal

RESULTS_VERSION = 1
CARGOHOLD = "cargohold"
DISTRIBUTION = "distribution"
DISPLAY = {CARGOHOLD: "cargohold", DISTRIBUTION: "Distribution 2.8"}

Better = Literal["higher", "lower"]
# Others' median CPU use, in cores, above which a run is flagged as measured on a busy machine.
BUSY_CORES = 0.25


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    better: Better
    target: float | None  # the ratio cargohold / Distribution must reach (≥ if higher, ≤ if lower)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str


def scenarios(size_mib: float, layers: int, concurrency: int) -> list[Scenario]:
    return [
        Scenario("push", f"push {size_mib:g} MiB, {layers} layers"),
        Scenario("pull", f"pull {size_mib:g} MiB, {layers} layers"),
        Scenario("concurrent_push", f"{concurrency} concurrent pushes, {size_mib:g} MiB in all"),
        Scenario("manifest_get", "manifest GET by tag"),
        Scenario("manifest_head", "manifest HEAD by tag"),
        Scenario("blob_head", "blob HEAD"),
    ]


def metrics(size_mib: float, layers: int, concurrency: int) -> list[Metric]:
    """Every metric a run reports, in table order."""
    found: list[Metric] = []
    for scenario in scenarios(size_mib, layers, concurrency):
        if scenario.key.endswith("push") or scenario.key == "pull":
            found.append(Metric(f"{scenario.key}_mb_s", scenario.label, "MB/s", "higher", 1.0))
        else:
            found += [
                Metric(f"{scenario.key}_rps", scenario.label, "req/s", "higher", 1.0),
                Metric(f"{scenario.key}_p50_ms", f"{scenario.label}, p50", "ms", "lower", None),
                Metric(f"{scenario.key}_p99_ms", f"{scenario.label}, p99", "ms", "lower", 1.0),
            ]
    for scenario in scenarios(size_mib, layers, concurrency):
        found.append(
            Metric(
                f"{scenario.key}_peak_rss_mib",
                f"peak RSS, {scenario.label}",
                "MiB",
                "lower",
                None,
            )
        )
    return found


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def summarize_metric(metric: Metric, samples: dict[str, list[float]]) -> dict[str, Any]:
    medians = {name: median(values) for name, values in samples.items()}
    ratio = None
    if CARGOHOLD in medians and DISTRIBUTION in medians and medians[DISTRIBUTION] > 0:
        ratio = medians[CARGOHOLD] / medians[DISTRIBUTION]
    return {
        "label": metric.label,
        "unit": metric.unit,
        "better": metric.better,
        "target_ratio": metric.target,
        "samples": samples,
        "median": medians,
        "ratio": ratio,
    }


def meets_target(entry: dict[str, Any]) -> bool | None:
    ratio, target = entry.get("ratio"), entry.get("target_ratio")
    if ratio is None or target is None:
        return None
    return bool(ratio >= target if entry["better"] == "higher" else ratio <= target)


def _number(value: float | None) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def results_table(results: dict[str, Any]) -> str:
    """Medians per registry, the ratio, and whether the issue's target is met."""
    names = [n for n in (CARGOHOLD, DISTRIBUTION) if n in results["servers"]]
    head = ["Metric", "Unit", *(DISPLAY[n] for n in names)]
    if len(names) == 2:
        head += ["cargohold / Distribution", "Better", "Target"]
    rows = [head, ["---"] * len(head)]
    for entry in results["metrics"].values():
        row = [entry["label"], entry["unit"], *(_number(entry["median"].get(n)) for n in names)]
        if len(names) == 2:
            met = meets_target(entry)
            target = entry["target_ratio"]
            sign = "≥" if entry["better"] == "higher" else "≤"
            row += [
                _number(entry["ratio"]),
                entry["better"],
                "—" if met is None else f"{sign} {target:g} {'✅' if met else '❌'}",
            ]
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


LIMIT_LABELS = {
    "sha256_mb_s": "SHA-256, one core",
    "disk_write_fsync_mb_s": "disk write + fsync (1 MiB writes)",
    "loopback_tcp_mb_s": "loopback TCP, one connection",
}


def limits_table(results: dict[str, Any]) -> str:
    rows = [["Limit", "MB/s (median)", "samples"], ["---", "---", "---"]]
    for key, entry in results["limits"].items():
        samples = ", ".join(_number(v) for v in entry["samples"])
        rows.append([LIMIT_LABELS.get(key, key), _number(entry["median"]), samples])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def fraction_table(results: dict[str, Any]) -> str:
    names = [n for n in (CARGOHOLD, DISTRIBUTION) if n in results["servers"]]
    rows = [
        ["Throughput", "Limit", *(DISPLAY[n] for n in names)],
        ["---"] * (2 + len(names)),
    ]
    for key, entry in results["fraction_of_limit"].items():
        label = results["metrics"][key]["label"]
        rows.append(
            [
                label,
                entry["limit"],
                *(f"{100 * entry['fraction'][n]:.0f} %" for n in names),
            ]
        )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def fractions_of_limits(
    metric_entries: dict[str, dict[str, Any]], limits: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Each throughput as a fraction of the machine limit that bounds it."""
    sha = limits["sha256_mb_s"]["median"]
    disk = limits["disk_write_fsync_mb_s"]["median"]
    tcp = limits["loopback_tcp_mb_s"]["median"]
    bounds = {
        "push_mb_s": ("min(SHA-256, disk)", min(sha, disk)),
        "concurrent_push_mb_s": ("min(SHA-256, disk)", min(sha, disk)),
        "pull_mb_s": ("loopback TCP", tcp),
    }
    out: dict[str, Any] = {}
    for key, (name, limit) in bounds.items():
        medians = metric_entries[key]["median"]
        out[key] = {
            "limit": name,
            "limit_mb_s": limit,
            "fraction": {n: v / limit for n, v in medians.items()},
        }
    return out


def foreign_cpu_text(results: dict[str, Any]) -> str:
    """How busy the rest of the machine was while the scenarios ran."""
    foreign = results.get("foreign_cpu_cores")
    if not foreign:
        return "Other processes' CPU use was not recorded."
    text = (
        f"Processes outside the benchmark used {foreign['median']:.2f} cores (median over "
        f"scenarios; max {foreign['max']:.2f}) of the machine's {results['machine']['nproc']} "
        "while the scenarios ran."
    )
    if foreign["median"] > BUSY_CORES:
        text += (
            " **The machine was busy: both registries and their clients competed with that load,"
            " so treat the ratios as indicative and rerun on a quiet machine.**"
        )
    return text


def samples_table(results: dict[str, Any]) -> str:
    """Every repetition's value, so the spread behind each median stays visible."""
    names = [n for n in (CARGOHOLD, DISTRIBUTION) if n in results["servers"]]
    rows = [["Metric", *(DISPLAY[n] for n in names)], ["---"] * (1 + len(names))]
    for entry in results["metrics"].values():
        cells = [", ".join(_number(v) for v in entry["samples"].get(n, [])) for n in names]
        rows.append([f"{entry['label']} ({entry['unit']})", *cells])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
