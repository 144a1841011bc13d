"""Random failures and repairs against theory.

- Availability: a server up for a draw of `time_to_failure` and down for a draw of
  `time_to_repair`, again and again, is an alternating renewal process; the long-run
  fraction of time up is MTTF / (MTTF + MTTR) whatever the two distributions (the
  renewal-reward theorem, e.g. Ross, *Stochastic Processes*, 2nd ed., §3.4.1).
- `resume`: one core, Poisson arrivals, exponential service, exponential failures that
  strike whether the server is busy or idle and exponential repairs, arrivals waiting
  while it is down, and a cut service resuming after the repair: the M/M/1 with
  breakdowns of Avi-Itzhak and Naor (1963), whose mean response time is computed from
  its truncated two-dimensional Markov chain (`theory.mm1_with_breakdowns`).
- `lose`: the same station, but a failure fails every request in it: the fraction
  lost is failure_rate x E[N; up] / lambda on the chain where a failure empties the
  station.

Fractions are estimated over independent replications with a Student t interval;
the response time by batch means within one run.
"""

from typing import Any

import numpy as np
import pytest
from queue_models import assert_agrees, estimate, one_server, simulate
from queue_models import station_response_times as response_times

from asyncflow_backend.metrics import theory
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import Scenario, parse_scenario
from asyncflow_backend.statistics import summarise
from support.documents import cpu, exponential

pytestmark = pytest.mark.statistical

CONFIDENCE = 0.998
"""Two-sided level of the replication intervals: a correct engine fails 1 in 500 runs."""


def failing_station(
    arrival_rate: float,
    mean_cpu_s: float,
    failures: dict[str, Any],
    horizon_s: float,
) -> Scenario:
    """One core, one exponential CPU step, and `failures`."""
    document = one_server(
        arrival_rate,
        [cpu(exponential(mean_cpu_s))],
        horizon_s=horizon_s,
        resources={"cpu_cores": 1},
        metrics=["ready_queue_len"],
    ).model_dump(mode="json", exclude_none=True)
    document["topology_graph"]["nodes"]["servers"][0]["failures"] = failures
    return parse_scenario(document)


def assert_covers(values: list[float], exact: float, what: str, max_relative: float) -> None:
    summary = summarise(values, CONFIDENCE)
    assert summary.mean is not None
    assert summary.low is not None
    assert summary.high is not None
    report = (
        f"{what}: simulated {summary.mean:.5g} in [{summary.low:.5g}, {summary.high:.5g}] "
        f"({CONFIDENCE:.1%}, {summary.n} runs), theory {exact:.5g}"
    )
    assert summary.low <= exact <= summary.high, report
    assert abs(summary.mean - exact) <= max_relative * exact, report


@pytest.mark.parametrize(
    ("time_to_failure", "time_to_repair"),
    [
        pytest.param(exponential(10.0), exponential(2.0), id="exponential"),
        pytest.param(
            {"mean": 10.0, "distribution": "log_normal", "variance": 50.0},
            {"mean": 2.0, "distribution": "uniform", "variance": 1.0},
            id="log_normal-uniform",
        ),
    ],
)
def test_availability_is_mttf_over_mttf_plus_mttr(
    time_to_failure: dict[str, Any], time_to_repair: dict[str, Any]
) -> None:
    failures = {"time_to_failure": time_to_failure, "time_to_repair": time_to_repair}
    scenario = failing_station(0.01, 0.01, failures, horizon_s=4000)
    runs = [run_scenario(scenario, seed=seed).servers["srv"] for seed in range(8)]
    exact = 10.0 / (10.0 + 2.0)
    assert_covers([s.availability for s in runs], exact, "availability", 0.02)
    for stats in runs:
        assert stats.downtime_s == pytest.approx(4000 * (1 - stats.availability))
        # About one failure per 12 s cycle.
        assert 4000 / 12 * 0.8 < stats.failures < 4000 / 12 * 1.2


def test_resumed_work_gives_the_response_time_of_the_mm1_with_breakdowns() -> None:
    arrival_rate, mean_cpu_s, mttf, mttr = 0.5, 1.0, 5.0, 1.0
    failures = {
        "time_to_failure": exponential(mttf),
        "time_to_repair": exponential(mttr),
        "work_in_progress": "resume",
    }
    run = simulate(failing_station(arrival_rate, mean_cpu_s, failures, 40_000), seed=7)
    exact = theory.mm1_with_breakdowns(arrival_rate, 1 / mean_cpu_s, 1 / mttf, 1 / mttr)
    assert run.results.requests.failed == 0
    assert_agrees(
        estimate(response_times(run)),
        exact.response_time,
        "mean response time, M/M/1 with breakdowns (resume)",
        max_relative_error=0.06,
    )
    # A plain M/M/1 at the same load would answer in 1 / (mu - lambda) = 2 s: the
    # breakdowns are what the estimate sees.
    assert exact.response_time > 3.0


def test_lost_work_is_the_fraction_of_the_chain_emptied_by_failures() -> None:
    arrival_rate, mean_cpu_s, mttf, mttr = 0.5, 1.0, 5.0, 1.0
    failures = {
        "time_to_failure": exponential(mttf),
        "time_to_repair": exponential(mttr),
        "work_in_progress": "lose",
    }
    scenario = failing_station(arrival_rate, mean_cpu_s, failures, 3000)
    exact = theory.mm1_with_breakdowns(arrival_rate, 1 / mean_cpu_s, 1 / mttf, 1 / mttr, lose=True)
    shares = []
    for seed in range(8):
        requests = run_scenario(scenario, seed=seed).requests
        assert set(requests.failed_at) == {"srv"}
        shares.append(requests.failed / requests.generated)
    assert_covers(shares, exact.lost_fraction, "fraction lost to failures", 0.06)
    assert np.isclose(exact.availability, mttf / (mttf + mttr))
