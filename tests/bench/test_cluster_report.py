"""bench/cluster_report.py writes docs/PERFORMANCE.md's scale-out section from a results file.
Its pull figures are the medians of a series of paired runs, with an interval that says how far
such a median can be trusted; a report that counted a failed run, paired the wrong runs or gave
an interval that does not hold the median would mislead whoever reads the figures."""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "bench_cluster_report", REPO / "bench" / "cluster_report.py"
)
assert spec is not None and spec.loader is not None
report = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = report
spec.loader.exec_module(report)


def rows(dist: list[float | None], one: list[float | None]) -> dict[str, dict[str, object]]:
    return {
        "distribution": {"target": "distribution", "pull_series": dist},
        "cargohold-1": {"target": "cargohold-1", "pull_series": one},
    }


def test_the_bootstrap_interval_holds_the_median_and_stays_within_the_values() -> None:
    values = [0.91, 1.04, 0.98, 1.12, 1.01, 0.95, 1.07, 1.0, 0.89, 1.03, 1.06, 0.97]
    low, high = report.bootstrap_median(values)
    assert min(values) <= low <= statistics.median(values) <= high <= max(values)
    assert low < high
    # A fixed seed: the same file gives the same report.
    assert report.bootstrap_median(values) == (low, high)


def test_the_interval_narrows_as_the_pairs_agree() -> None:
    wide = report.bootstrap_median([0.7, 1.3, 0.8, 1.2, 0.9, 1.1, 1.0])
    narrow = report.bootstrap_median([0.99, 1.01, 0.995, 1.005, 1.0, 0.998, 1.002])
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 10


def test_each_pair_is_one_node_over_distribution_and_a_failed_run_drops_its_pair() -> None:
    (blank, line) = report.series_lines(rows([400.0, 200.0, 300.0], [440.0, None, 270.0]))
    assert blank == ""
    assert "in 3 pairs" in line
    assert "one node 440.0, failed, 270.0" in line
    # 440/400 and 270/300; the pair with the failed run is not a ratio.
    assert "pair by pair: 1.10, 0.90;" in line
    assert "median 1.00," in line
    assert "one node ahead in 1 of 2 pairs" in line


def test_no_series_no_lines_and_the_rates_are_said_to_be_the_rounds_medians() -> None:
    plain = {
        "distribution": {"target": "distribution"},
        "cargohold-1": {"target": "cargohold-1"},
    }
    assert report.series_lines(plain) == []
    assert report.series_clause(plain) == "The medians are reported. "
    assert "medians of 3 more runs" in report.series_clause(rows([1.0] * 3, [1.0] * 3))


def test_runs_that_waited_in_vain_for_an_idle_machine_are_reported() -> None:
    assert report.settle_clause({}) == " on an idle machine"
    calm = report.settle_clause({"settle": {"runs": 40, "timed_out": 0}})
    assert "all 40 runs" in calm
    busy = report.settle_clause({"settle": {"runs": 40, "timed_out": 3}})
    assert "except in 3 of 40 runs" in busy
