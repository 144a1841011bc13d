"""The time to outcome (every request to its end, of any kind) and the share of requests
that did not complete: what stands beside the latency of completed requests."""

from types import SimpleNamespace

import pytest
import simpy

from asyncflow_backend.config.constants import EndReason, Outcome
from asyncflow_backend.experiments import run_replication
from asyncflow_backend.experiments.measure import OUTCOME_METRICS, metric_names
from asyncflow_backend.metrics import analyzer
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.runtime.runner import run_scenario
from support.scenarios import cpu_station


def test_when_every_request_times_out_its_time_to_outcome_is_the_timeout() -> None:
    # 100 ms of CPU behind 1 ms links: no answer can come within 50 ms.
    scenario = cpu_station(rate=20, cpu=0.1, horizon_s=10, dropout=0.0).timeout(0.05).build()

    results = run_scenario(scenario, seed=1)

    requests, outcome = results.requests, results.time_to_outcome
    assert requests.completed == 0
    assert results.latency.count == 0
    assert outcome is not None
    assert outcome.count == requests.timed_out > 150
    for stat in (outcome.mean, outcome.p50, outcome.p90, outcome.p95, outcome.p99, outcome.max):
        assert stat == pytest.approx(0.05, abs=1e-12)
    assert requests.not_completed_share == 1.0


def test_a_retried_request_that_never_completes_counts_from_its_first_attempt() -> None:
    # Three attempts of 50 ms, each timing out, after backoffs of exactly 10 and 20 ms.
    scenario = (
        cpu_station(rate=20, cpu=0.1, horizon_s=10, dropout=0.0)
        .timeout(0.05)
        .retry(3, retry_on=["timed_out"], base_s=0.01, cap_s=0.02, jitter="none")
        .build()
    )

    results = run_scenario(scenario, seed=1)

    outcome = results.time_to_outcome
    assert outcome is not None
    assert results.requests.retries > 2 * 150
    assert outcome.count == results.requests.timed_out
    for stat in (outcome.mean, outcome.p50, outcome.max):
        assert stat == pytest.approx(0.05 + 0.01 + 0.05 + 0.02 + 0.05, abs=1e-12)


def ended_at(env: simpy.Environment, collector: MetricsCollector, at: float, act: object) -> None:
    def process() -> simpy.events.Event:
        yield env.timeout(at)
        act()  # type: ignore[operator]

    env.process(process())


def test_a_mixed_run_pools_completions_and_every_other_end_by_hand() -> None:
    env = simpy.Environment()
    collector = MetricsCollector(env, horizon_s=10)
    collector.generated = 6
    fast = SimpleNamespace(created_at=0.0, returning=True)
    slow = SimpleNamespace(created_at=1.0, returning=True)
    timed_out = SimpleNamespace(created_at=2.0, returning=True)
    rejected = SimpleNamespace(created_at=3.0, returning=True)
    # A retried request's last attempt, sent at 6 s: its time counts from its first, at 4 s.
    retried = SimpleNamespace(created_at=6.0, returning=True, first=SimpleNamespace(created_at=4.0))
    client, srv = "client", "srv"
    ended_at(env, collector, 1.0, lambda: collector.record_completion(fast))  # 1 s
    ended_at(env, collector, 4.0, lambda: collector.record_completion(slow))  # 3 s
    ended_at(
        env,
        collector,
        4.0,
        lambda: collector.record_end(
            timed_out, Outcome.TIMED_OUT, client, EndReason.CLIENT_TIMEOUT
        ),
    )  # 2 s
    ended_at(
        env,
        collector,
        3.5,
        lambda: collector.record_end(rejected, Outcome.REJECTED, srv, EndReason.QUEUE_FULL),
    )  # 0.5 s
    ended_at(
        env,
        collector,
        8.0,
        lambda: collector.record_end(retried, Outcome.TIMED_OUT, client, EndReason.CLIENT_TIMEOUT),
    )  # 4 s
    env.run(until=10)

    latency = analyzer.latency_stats(collector.latencies)
    outcome = analyzer.time_to_outcome(collector, latency)
    counts = analyzer.request_counts(collector, client, 10)

    # Completions 1 and 3 s; other ends 0.5, 2 and 4 s: sorted 0.5, 1, 2, 3, 4.
    assert latency.mean == 2.0
    assert outcome.count == 5
    assert outcome.mean == pytest.approx(2.1)
    assert outcome.p50 == pytest.approx(2.0)
    assert outcome.p90 == pytest.approx(3.6)  # 3 + 0.6 x (4 - 3)
    assert outcome.max == pytest.approx(4.0)
    # 6 generated, 2 completed: 4 did not (3 ended otherwise, 1 still in flight).
    assert counts.in_flight == 1
    assert counts.not_completed_share == pytest.approx(4 / 6)


def test_a_run_where_everything_completes_reuses_the_latency_and_records_no_end() -> None:
    results = run_scenario(cpu_station(rate=5, cpu=0.01, horizon_s=20, dropout=0.0).build(), seed=2)

    latency, outcome = results.latency, results.time_to_outcome
    assert outcome is not None
    assert results.requests.in_flight + results.requests.completed == results.requests.generated
    assert (outcome.count, outcome.mean, outcome.p95, outcome.max) == (
        latency.count,
        latency.mean,
        latency.p95,
        latency.max,
    )
    assert results.requests.not_completed_share == pytest.approx(
        results.requests.in_flight / results.requests.generated
    )


def test_experiment_metrics_give_the_time_to_outcome_after_the_warm_up() -> None:
    # Every request times out at 50 ms; the warm-up leaves out the ends before 2 s.
    scenario = cpu_station(rate=20, cpu=0.1, horizon_s=10, dropout=0.0).timeout(0.05).build()

    replication = run_replication(scenario, 0, 5, 2.0)

    metrics = replication.metrics
    assert set(OUTCOME_METRICS) <= set(metric_names(scenario))
    for name in OUTCOME_METRICS:
        assert metrics[name] == pytest.approx(0.05, abs=1e-12)
    assert metrics["latency.p95"] is None
    assert metrics["throughput.goodput_rps"] == metrics["throughput.mean_rps"] == 0
    assert metrics["requests.not_completed_share"] == 1.0


def test_the_warm_up_cuts_the_other_ends_at_the_same_time_as_the_completions() -> None:
    # 20 requests/s into a core that serves 10/s with a 0.3 s timeout: a few completions
    # early, then the queue is too long and every request times out.
    scenario = cpu_station(rate=20, cpu=0.1, horizon_s=20, dropout=0.0).timeout(0.3).build()

    whole = run_replication(scenario, 0, 3, 0.0).metrics
    late = run_replication(scenario, 0, 3, 10.0).metrics

    latency, mean_whole = whole["latency.p95"], whole["time_to_outcome.mean"]
    assert latency is not None
    assert mean_whole is not None
    assert latency <= 0.3
    assert mean_whole < 0.3  # the early completions, quicker than the timeout
    assert late["latency.p95"] is None  # nothing completes after 10 s
    for name in OUTCOME_METRICS:
        assert late[name] == pytest.approx(0.3, abs=1e-9)
