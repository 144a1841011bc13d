"""Experiment metrics over a window of simulated time, the recovery metrics, and both as
what an experiment sweeps or searches on."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from asyncflow_backend.experiments import (
    ExperimentValidationError,
    parse_experiment,
    prepare,
    run_experiment,
    run_replication,
)
from asyncflow_backend.experiments.measure import RECOVERY_METRICS, metric_names, recovery_metrics
from asyncflow_backend.experiments.windows import (
    WindowError,
    measure_window,
    parse_windowed,
    peak_window,
)
from asyncflow_backend.schemas.loading import load_yaml, parse_scenario
from asyncflow_backend.schemas.results import Recovery
from support.documents import cpu, outage, poisson_arrivals, server
from support.scenarios import parsing_server
from support.topologies import direct

EXAMPLES = Path(__file__).parents[2] / "example"

COMPLETED_AT = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
LATENCIES = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
ENDED_AT = np.array([2.5, 3.5, 6.0])
END_LATENCIES = np.array([1.0, 1.0, 1.0])


def window(base: str, start: float, end: float) -> float | None:
    return measure_window(base, start, end, COMPLETED_AT, LATENCIES, ENDED_AT, END_LATENCIES)


def test_a_window_selects_requests_by_when_they_ended() -> None:
    # [2, 4): completions at 2 and 3 (0.2, 0.3 s), other ends at 2.5 and 3.5 (1 s each).
    assert window("latency.mean", 2, 4) == pytest.approx(0.25)
    assert window("latency.p50", 2, 4) == pytest.approx(0.25)
    assert window("throughput.mean_rps", 2, 4) == 1.0
    assert window("throughput.goodput_rps", 2, 4) == 1.0
    assert window("time_to_outcome.mean", 2, 4) == pytest.approx(0.625)
    assert window("time_to_outcome.p99", 2, 4) == pytest.approx(1.0)
    assert window("requests.not_completed_share", 2, 4) == 0.5
    # Nothing completed or ended in [7, 9): no latency, no share, a throughput of 0.
    assert window("latency.p95", 7, 9) is None
    assert window("requests.not_completed_share", 7, 9) is None
    assert window("throughput.mean_rps", 7, 9) == 0.0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("servers.srv.cpu_utilisation@[0,5]", "has no windowed form"),
        ("latency.p95@[0;5]", "neither [start,end]"),
        ("latency.p95@busy", "neither [start,end]"),
    ],
)
def test_a_name_that_cannot_be_read_says_why(name: str, message: str) -> None:
    with pytest.raises(WindowError, match=message.replace("[", r"\[")):
        parse_windowed(name)


def experiment(scenario: dict[str, Any], **fields: Any) -> Any:
    return parse_experiment({"scenario": scenario, "seed": 1, "replications": 2, **fields})


def problems(spec: Any) -> list[str]:
    with pytest.raises(ExperimentValidationError) as caught:
        prepare(spec)
    return [str(p) for p in caught.value.problems]


def test_windows_that_do_not_fit_the_run_name_the_field() -> None:
    scenario = parsing_server(users=5, horizon_s=7200)
    spec = experiment(
        scenario,
        metrics=["latency.p95@[100,50]", "latency.p95@[-1,50]", "latency.p95@peak"],
        search={"objective": {"metric": "latency.p95@[3600,9000]", "at_most": 0.1}},
    )
    assert problems(spec) == [
        "metrics[0]: window end 50 is not after its start 100",
        "metrics[1]: window start -1 is before 0",
        "metrics[2]: @peak needs an arrival-rate schedule (rqs_input.arrival_rate) to find the "
        "busiest window in; give the window as @[start,end]",
        "search.objective.metric: window end 9000 is past the horizon 7200",
    ]


def test_an_unknown_metric_points_at_the_windowed_forms() -> None:
    spec = experiment(
        parsing_server(users=5, horizon_s=10),
        until_precise={"metric": "latency.p97", "relative_half_width": 0.1, "max_replications": 4},
    )
    [problem] = problems(spec)
    assert problem.startswith("until_precise.metric: unknown metric 'latency.p97'")
    assert "latency.p95@[start,end]" in problem


def daily(horizon_s: float, peak_at_s: float) -> dict[str, Any]:
    scenario = parsing_server(users=5, horizon_s=horizon_s)
    scenario["rqs_input"] = {
        "id": "gen",
        "arrival_rate": {
            "shape": "daily",
            "period_s": 86400,
            "peak_rate_per_s": 2,
            "trough_rate_per_s": 0.5,
            "peak_at_s": peak_at_s,
        },
    }
    return scenario


def test_the_peak_hour_of_a_daily_curve_is_centred_on_its_peak() -> None:
    assert peak_window(parse_scenario(daily(86400, 50400)), 3600) == (48600, 52200)
    # A peak near the end: the busiest hour that fits ends at the horizon.
    assert peak_window(parse_scenario(daily(86400, 86000)), 3600) == (82800, 86400)


def test_the_peak_of_a_step_schedule_is_its_busiest_stretch() -> None:
    scenario = parsing_server(users=5, horizon_s=600)
    scenario["rqs_input"] = {
        "id": "gen",
        "arrival_rate": {
            "shape": "steps",
            "points": [
                {"at_s": 0, "rate_per_s": 10},
                {"at_s": 200, "rate_per_s": 30},
                {"at_s": 230, "rate_per_s": 10},
                {"at_s": 400, "rate_per_s": 25},
                {"at_s": 500, "rate_per_s": 10},
            ],
        },
    }
    parsed = parse_scenario(scenario)
    # 60 s windows: [200, 260) holds 30 x 30 + 30 x 10 = 1200, [400, 460) 1500.
    assert peak_window(parsed, 60) == (400, 460)
    # 30 s windows: [200, 230) holds 900, [400, 430) 750.
    assert peak_window(parsed, 30) == (200, 230)
    spec = experiment(scenario, metrics=["latency.p95@peak:30", "latency.p95@peak"])
    assert problems(spec) == [
        "metrics[1]: the peak window of 3600 s is longer than the horizon 600; give a shorter "
        "one as @peak:<seconds>"
    ]


def test_windowed_metrics_of_a_replication_agree_with_the_whole_run() -> None:
    scenario = parse_scenario(parsing_server(users=30, horizon_s=10))
    names = ["latency.p95@[0,10]", "throughput.goodput_rps@[0,10]", "latency.p95@[5,10]"]
    metrics = run_replication(scenario, 0, 5, 0.0, names).metrics
    assert metrics["latency.p95@[0,10]"] == metrics["latency.p95"]
    assert metrics["throughput.goodput_rps@[0,10]"] == metrics["throughput.goodput_rps"]
    assert metrics["latency.p95@[5,10]"] != metrics["latency.p95"]
    # Not asked for: not measured.
    assert not any("@" in name for name in run_replication(scenario, 0, 5, 0.0).metrics)


def test_a_windowed_metric_is_a_search_objective() -> None:
    spec = experiment(
        parsing_server(users=30, horizon_s=10),
        search={
            "objective": {"metric": "latency.p95@[5,10]", "at_most": 0.05},
            "tolerance": 0.5,
            "max_points": 8,
        },
    )
    report = run_experiment(prepare(spec))
    assert "latency.p95@[5,10]" in report.metrics
    assert report.search is not None
    assert report.search.status == "found"
    verdicts = {p.factor: p.verdict for p in report.points}
    assert "pass" in verdicts.values()
    assert "fail" in verdicts.values()
    for point in report.points:
        assert point.summary["latency.p95@[5,10]"].n == len(point.replications)


def verdict(recovered: bool | None, recovery_s: float | None, end: float = 90) -> Recovery:
    return Recovery(
        trigger="t",
        kind="capacity_dip",
        started_at_s=60,
        ended_at_s=end,
        recovered=recovered,
        recovered_at_s=None if recovery_s is None else end + recovery_s,
        recovery_s=recovery_s,
        judged_until_s=300,
        baseline_goodput_rps=40,
        baseline_queue=2,
        note="",
    )


def test_a_run_not_recovered_counts_until_the_horizon() -> None:
    assert recovery_metrics([verdict(True, 12), verdict(True, 30, end=150)]) == {
        "recovery.recovered_share": 1.0,
        "recovery.not_recovered_share": 0.0,
        "recovery.recovery_s": 30.0,
    }
    assert recovery_metrics([verdict(True, 12), verdict(False, None, end=150)]) == {
        "recovery.recovered_share": 0.0,
        "recovery.not_recovered_share": 1.0,
        "recovery.recovery_s": 150.0,
    }
    assert recovery_metrics([verdict(None, None)]) == dict.fromkeys(RECOVERY_METRICS)


def test_recovery_metrics_only_for_a_scenario_with_a_trigger() -> None:
    plain = direct(poisson_arrivals(5), [server("srv", cpu(0.01))], horizon_s=100)
    assert not set(RECOVERY_METRICS) & set(metric_names(parse_scenario(plain)))
    plain["events"] = [outage("down", "srv", start=40, end=50)]
    assert set(RECOVERY_METRICS) <= set(metric_names(parse_scenario(plain)))


def test_a_sweep_of_the_retry_budget_finds_where_the_system_stops_recovering() -> None:
    scenario = load_yaml((EXAMPLES / "retry_storm_budget.yml").read_text(encoding="utf-8"))
    spec = experiment(
        scenario,
        sweep=[{"path": "rqs_input.retry.budget.ratio", "values": [0.1, 0.5]}],
        metrics=["throughput.goodput_rps@[150,300]"],
    )
    frugal, generous = run_experiment(prepare(spec)).points
    assert frugal.summary["recovery.recovered_share"].mean == 1.0
    assert generous.summary["recovery.recovered_share"].mean == 0.0
    assert generous.summary["recovery.not_recovered_share"].mean == 1.0
    recovery_s = frugal.summary["recovery.recovery_s"].mean
    assert recovery_s is not None
    assert recovery_s < 90
    # Not recovered: counted from the end of the dip (90 s) to the horizon (300 s).
    assert generous.summary["recovery.recovery_s"].mean == 210.0
    late = generous.summary["throughput.goodput_rps@[150,300]"].mean
    assert late is not None
    assert late < 0.1 * 40
