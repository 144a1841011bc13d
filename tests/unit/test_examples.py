"""Every example scenario validates, runs and gives sane numbers; ours say what they claim.

The AsyncFlow example files (kept beside the repository in
`shared/anchors/asyncflow-examples`, or where `ASYNCFLOW_ANCHORS` points) must
run unchanged.
"""

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest

from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import Scenario, load_scenario_file, parse_scenario
from asyncflow_backend.schemas.results import SimulationResults

REPO = Path(__file__).parents[2]
EXAMPLES = REPO / "example"
ANCHORS = Path(
    os.environ.get("ASYNCFLOW_ANCHORS", REPO.parent / "shared" / "anchors" / "asyncflow-examples")
)
SCENARIO_SUFFIXES = {".yml", ".yaml", ".json"}
SHORT_HORIZON_S = 40.0


def scenario_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SCENARIO_SUFFIXES)


OURS = scenario_files(EXAMPLES)
THEIRS = scenario_files(ANCHORS)


def shortened(scenario: Scenario, horizon: float = SHORT_HORIZON_S) -> Scenario:
    """The same scenario over a shorter horizon, its event windows scaled to fit."""
    full = scenario.sim_settings.total_simulation_time
    if full <= horizon:
        return scenario
    factor = horizon / full
    document: dict[str, Any] = copy.deepcopy(scenario.model_dump(mode="json"))
    document["sim_settings"]["total_simulation_time"] = horizon
    for event in document.get("events") or []:
        event["start"]["t_start"] *= factor
        event["end"]["t_end"] *= factor
    return parse_scenario(document)


def assert_sane(results: SimulationResults) -> None:
    requests = results.requests
    assert requests.completed > 0
    assert requests.generated == (
        requests.completed
        + requests.dropped
        + requests.failed
        + requests.timed_out
        + requests.rejected
        + requests.in_flight
    )
    assert requests.in_flight >= 0
    for outcome in ("dropped", "failed", "timed_out", "rejected"):
        assert getattr(requests, outcome) == sum(getattr(requests, f"{outcome}_at").values())
        assert getattr(requests, outcome) == sum(requests.per_second.get(outcome, []))
    assert sum(end.count for end in requests.ends) == requests.generated - requests.in_flight
    assert results.latency.count == requests.completed
    assert results.latency.min is not None
    assert results.latency.min >= 0
    assert sum(results.throughput.per_second) == requests.completed + requests.late_answers
    assert sum(results.latency.histogram.counts) == requests.completed
    for stats in results.servers.values():
        assert 0 <= stats.cpu_utilisation <= 1
    # The breakdown of the mean response time sums to it exactly.
    assert results.breakdown
    assert sum(part.mean_s for part in results.breakdown) == pytest.approx(
        results.latency.mean, rel=1e-12
    )
    assert sum(part.share for part in results.breakdown) == pytest.approx(1.0, rel=1e-12)


def test_there_are_examples() -> None:
    names = {p.name for p in OURS}
    assert {"quickstart.yml", "mm1.yml", "ram_pressure.yml", "mm2.json"} <= names
    assert any(p.suffix == ".json" for p in OURS)


@pytest.mark.parametrize("path", OURS + THEIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_validates_and_runs(path: Path) -> None:
    scenario = load_scenario_file(path)

    results = run_scenario(shortened(scenario), seed=1)

    assert_sane(results)


LONG_HORIZONS = {"daily_curve.yml": 86_400, "slowdown.yml": 1_200}
"""Examples whose point is a long horizon: a day of traffic, at a low rate; a slowdown of
10 minutes with calm before and after."""


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.name)
def test_our_examples_keep_modest_horizons(path: Path) -> None:
    scenario = load_scenario_file(path)

    assert scenario.sim_settings.total_simulation_time <= LONG_HORIZONS.get(path.name, 600)
    assert scenario.expected_requests <= 70_000
    if path.suffix != ".json":
        assert path.read_text(encoding="utf-8").startswith("# "), "say what the file models"


def test_asyncflow_examples_run_unchanged_in_full() -> None:
    if not THEIRS:
        pytest.skip(f"no AsyncFlow examples at {ANCHORS}")
    for path in THEIRS:
        scenario = load_scenario_file(path)
        results = run_scenario(scenario, seed=2)
        assert_sane(results)
        assert results.meta.simulated_seconds == scenario.sim_settings.total_simulation_time


def run_example(name: str, seed: int = 4) -> SimulationResults:
    results = run_scenario(load_scenario_file(EXAMPLES / name), seed=seed)
    assert_sane(results)
    return results


def series_between(
    results: SimulationResults, metric: str, component: str, start: float, end: float
) -> list[float]:
    period = results.time_series.sample_period_s
    values = results.time_series.series[metric][component]
    return values[round(start / period) : round(end / period)]


def test_mm1_agrees_with_theory() -> None:
    results = run_example("mm1.yml")
    queue = results.servers["queue"]

    assert results.latency.mean == pytest.approx(0.0503, rel=0.12)
    assert queue.cpu_utilisation == pytest.approx(0.75, abs=0.03)
    assert queue.ready_queue_mean == pytest.approx(2.25, rel=0.25)
    assert results.requests.dropped == 0


def test_mm2_agrees_with_erlang_c_and_carries_its_seed() -> None:
    scenario = load_scenario_file(EXAMPLES / "mm2.json")
    results = run_scenario(scenario)
    agents = results.servers["agents"]

    assert results.meta.seed == 2024
    assert results.latency.mean == pytest.approx(0.0447, rel=0.15)
    assert agents.cpu_utilisation == pytest.approx(0.8, abs=0.03)


def test_ram_pressure_is_a_ram_bottleneck() -> None:
    results = run_example("ram_pressure.yml")
    reports = results.servers["reports"]

    assert reports.ram_peak_mb == 1000
    assert reports.ram_mean_mb is not None
    assert reports.ram_mean_mb > 600
    assert reports.cpu_utilisation < 0.1
    assert reports.ready_queue_max == 0
    assert (results.latency.p99 or 0) > 3 * (results.latency.p50 or 0)

    document = load_scenario_file(EXAMPLES / "ram_pressure.yml").model_dump(mode="json")
    document["topology_graph"]["nodes"]["servers"][0]["server_resources"]["ram_mb"] = 2048
    roomy = run_scenario(parse_scenario(document), seed=4)
    assert roomy.latency.p99 is not None
    assert roomy.latency.p99 < 0.15


def test_weighted_endpoints_are_honoured() -> None:
    results = run_example("weighted_endpoints.yml")

    # 70 % cheap /browse calls: the median is one of them. Uniform picking would
    # put the median on /search or /checkout.
    assert results.latency.p50 is not None
    assert results.latency.p50 < 0.012
    assert results.latency.p99 is not None
    assert results.latency.p99 > 0.06
    assert results.servers["shop-api"].cpu_utilisation == pytest.approx(0.075, abs=0.015)


def test_outages_take_each_server_out_in_turn() -> None:
    results = run_example("outages.yml")

    assert results.requests.dropped == 0
    for server, (start, end) in {
        "srv-a": (30, 90),
        "srv-b": (120, 180),
        "srv-c": (210, 270),
    }.items():
        # A second after the outage begins, the requests it had have drained.
        assert set(series_between(results, "ram_in_use", server, start + 1, end)) == {0.0}
        assert max(series_between(results, "ram_in_use", server, end + 1, end + 30)) > 0


def test_failures_lose_work_on_one_server_and_resume_it_on_the_other() -> None:
    results = run_example("failures.yml")

    for server in ("api-a", "api-b"):
        stats = results.servers[server]
        assert stats.failures > 0
        assert 0.6 < stats.availability < 1
        assert stats.downtime_s == pytest.approx(600 * (1 - stats.availability))
    assert set(results.requests.failed_at) == {"api-b"}
    assert {(e.place, e.reason) for e in results.requests.ends if e.outcome == "failed"} == {
        ("api-b", "server_failure")
    }
    assert results.requests.rejected == 0
    # A request on api-a when it failed waited for the repair.
    assert results.latency.max is not None
    assert results.latency.max > 5


def test_a_maintenance_window_on_the_only_server_rejects_its_arrivals() -> None:
    results = run_example("maintenance_window.yml")
    rejected = results.requests.per_second["rejected"]

    assert results.requests.rejected == results.requests.rejected_at["backend"]
    assert results.requests.rejected == pytest.approx(900, rel=0.15)
    assert sum(rejected[:60]) == sum(rejected[91:]) == 0
    assert sum(results.throughput.per_second[61:90]) == 0
    assert {(e.place, e.reason) for e in results.requests.ends if e.outcome == "rejected"} == {
        ("backend", "server_down")
    }


def test_event_injection_lb_spikes_and_outages_show() -> None:
    results = run_example("event_injection_lb.yml")
    connections = "edge_concurrent_connection"

    assert set(series_between(results, "ram_in_use", "node-1", 151, 210)) == {0.0}
    assert set(series_between(results, "ram_in_use", "node-2", 331, 390)) == {0.0}
    spiked = series_between(results, connections, "storefront-gateway", 61, 120)
    calm = series_between(results, connections, "storefront-gateway", 121, 150)
    assert sum(spiked) / len(spiked) > 5 * sum(calm) / len(calm)


def test_a_database_3x_slower_for_10_minutes_queues_at_the_apis_pool_then_recovers() -> None:
    results = run_example("slowdown.yml")

    def mean(metric: str, component: str, start: float, end: float) -> float:
        values = series_between(results, metric, component, start, end)
        return sum(values) / len(values)

    before = mean("pool_waiting", "api:db", 0, 300)
    during = mean("pool_waiting", "api:db", 300, 900)
    assert during > 10 * before
    assert mean("pool_waiting", "api:db", 905, 1200) < 2 * before + 0.01
    disk_before = mean("event_loop_io_sleep", "db", 0, 300)
    assert mean("event_loop_io_sleep", "db", 300, 900) == pytest.approx(3 * disk_before, rel=0.2)


def test_heavy_spike_piles_requests_on_the_wire() -> None:
    results = run_example("heavy_spike_single_server.yml")

    assert results.edges["client-monolith"].connections_max is not None
    assert results.edges["client-monolith"].connections_max > 300
    assert results.latency.p95 is not None
    assert results.latency.p95 > 2.5
    assert results.servers["monolith"].cpu_utilisation == pytest.approx(0.9, abs=0.04)


def test_least_connection_avoids_the_far_server() -> None:
    servers = run_example("least_connections_lb.yml").servers

    eu_1, eu_2, us_1 = (servers[s].cpu_utilisation for s in ("eu-1", "eu-2", "us-1"))
    assert eu_1 > eu_2 > us_1


def test_round_robin_splits_evenly() -> None:
    servers = run_example("two_servers_lb.yml").servers

    assert servers["web-a"].cpu_utilisation == pytest.approx(
        servers["web-b"].cpu_utilisation, rel=0.02
    )
    assert servers["web-a"].cpu_utilisation == pytest.approx(0.15, abs=0.02)


def test_multi_core_utilisation() -> None:
    renderer = run_example("multi_core.yml").servers["renderer"]

    assert renderer.cpu_utilisation == pytest.approx(0.70, abs=0.03)
    assert renderer.io_queue_max == 0


def test_quickstart_and_single_server_match_their_comments() -> None:
    quick = run_example("quickstart.yml")
    single = run_example("single_server.yml")

    assert quick.latency.mean == pytest.approx(0.024, rel=0.1)
    assert quick.servers["api-1"].cpu_utilisation == pytest.approx(0.24, abs=0.03)
    assert single.latency.p50 == pytest.approx(0.090, rel=0.05)
    assert single.servers["backend"].io_queue_mean == pytest.approx(2.4, rel=0.15)
    assert single.requests.dropped / single.requests.generated == pytest.approx(0.03, abs=0.01)


@pytest.mark.parametrize("doc", ["semantics.md", "scenario-language.md"])
def test_python_examples_in_the_docs_run(doc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, f"{doc} has no Python example"
    monkeypatch.chdir(REPO)
    for block in blocks:
        namespace: dict[str, Any] = {}
        exec(compile(block, doc, "exec"), namespace)
        scenario = namespace.get("scenario")
        assert scenario is None or isinstance(scenario, Scenario)


def test_the_daily_curve_follows_its_sine_over_a_day() -> None:
    results = run_example("daily_curve.yml")
    # The integral of the rate over the day: its mean rate, 0.75/s, times 86,400 s.
    expected = 0.75 * 86_400
    assert abs(results.requests.generated - expected) < 4 * expected**0.5
    hourly = [sum(results.throughput.per_second[h * 3600 : (h + 1) * 3600]) for h in range(24)]
    assert max(range(24), key=hourly.__getitem__) in (13, 14)
    assert min(range(24), key=hourly.__getitem__) in (1, 2)
    assert results.offered_load is not None
    assert results.offered_load.rate_per_s is not None
    assert max(results.offered_load.rate_per_s) == pytest.approx(1.4, abs=0.01)


def test_the_closed_fleet_saturates_the_api_and_keeps_the_interactive_law() -> None:
    results = run_example("closed_fleet.yml")
    per_second = results.throughput.per_second
    twenty, sixty = sum(per_second[10:100]) / 90, sum(per_second[110:200]) / 90
    assert 33 < twenty < 42
    assert 90 < sixty <= 100
    closed = results.closed
    assert closed is not None
    assert closed.users_mean == pytest.approx(40)
    assert closed.users_max == 60
    assert closed.interactive_law_rps == pytest.approx(closed.throughput_rps, rel=0.02)
    assert max(results.time_series.series["ready_queue_len"]["api"]) <= 60


def test_admission_and_timeouts_keep_the_overload_in_hand() -> None:
    results = run_example("admission_timeouts.yml")
    requests = results.requests
    ends = {(e.outcome, e.reason): e.count for e in requests.ends}

    assert set(requests.rejected_at) == {"api"}
    assert results.servers["api"].ready_queue_max == 30
    assert ends[("rejected", "queue_full")] > 0
    # The queue is longer than the clients' patience: many run their step for nothing.
    assert ends[("timed_out", "stopped_after_cpu_step")] > 0.1 * requests.generated
    assert ends[("timed_out", "withdrawn_from_ready_queue")] > 0
    assert results.latency.max is not None
    assert results.latency.max <= 0.25
    goodput = results.throughput.goodput_rps
    assert goodput is not None
    assert goodput < 0.8 * 100 < results.servers["api"].cpu_utilisation * 100 + 1


def test_the_autoscaling_example_follows_its_daily_curve() -> None:
    results = run_example("autoscaling.yml")

    stats = results.replica_groups["api"].autoscaling
    assert stats is not None
    assert 6 <= stats.replicas_max <= 8
    assert 3.5 <= stats.replicas_mean <= 5.5
    peak = max(range(len(stats.replicas_over_time)), key=lambda i: stats.replicas_over_time[i][1])
    assert 200 <= stats.replicas_over_time[peak][0] <= 330
    assert stats.replicas_over_time[-1][1] <= 3
    assert all(
        t_ready >= t
        for (t, _), (t_ready, _) in zip(
            stats.replicas_over_time[:4], stats.ready_over_time[:4], strict=True
        )
    )
