"""Admission control and client timeouts against queueing theory.

- A concurrency cap of c on a server of c cores whose only step is an exponential
  CPU burst is the M/M/c/c loss system: the fraction rejected is Erlang B.
- A ready-queue cap of K - 1 on one core is M/M/1/K: the fraction rejected is
  pi(K), and the mean response of the admitted requests W = L / (lambda (1 - pi(K))).
- An exponential client timeout with `on_timeout: cancel` withdraws a request
  from the ready queue when its patience runs out, while a CPU burst already
  started runs to its end: the core sees M/M/c+M (Erlang A). The fraction
  withdrawn from the ready queue is Erlang A's abandonment, the mean wait for a
  core over every arrival is Lq / lambda, and since patience is memoryless a
  request that reached a core times out during its burst with probability
  theta / (theta + mu).

Fractions are estimated over independent replications (the runs share nothing
but the scenario), with a Student t interval from scipy; response times by batch
means within a run.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from queue_models import (
    assert_agrees,
    estimate,
    one_server,
    simulate,
    station_response_times,
)
from scipy import stats

from asyncflow_backend.metrics import theory
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import Scenario, parse_scenario
from asyncflow_backend.schemas.results import SimulationResults
from support.documents import cpu, exponential

pytestmark = pytest.mark.statistical

CONFIDENCE = 0.998
"""Two-sided level of the replication intervals: a correct engine fails 1 in 500 runs."""
MAX_RELATIVE_ERROR = 0.05


@dataclass(frozen=True)
class Replicated:
    """A fraction measured in each of several independent runs."""

    values: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def half_width(self) -> float:
        """Half the Student t interval at `CONFIDENCE` around the mean."""
        n = self.values.size
        t = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)
        return float(t * self.values.std(ddof=1) / np.sqrt(n))

    def assert_covers(self, exact: float, what: str) -> None:
        report = (
            f"{what}: simulated {self.mean:.5g} +- {self.half_width:.2g} "
            f"({CONFIDENCE:.1%}, {self.values.size} runs), theory {exact:.5g}"
        )
        assert abs(self.mean - exact) <= self.half_width, report
        assert abs(self.mean - exact) <= MAX_RELATIVE_ERROR * exact, report


def replicate(scenario: Scenario, seeds: range, fraction: Any) -> Replicated:
    """`fraction(results)` over one run per seed."""
    return Replicated(np.array([fraction(run_scenario(scenario, seed=s)) for s in seeds]))


def rejected_share(results: SimulationResults) -> float:
    return results.requests.rejected / results.requests.generated


def capped_station(
    arrival_rate: float, mean_cpu_s: float, cores: int, admission: dict[str, int], horizon_s: float
) -> Scenario:
    """One server of `cores` cores, one exponential CPU step, with `admission` caps."""
    document = one_server(
        arrival_rate,
        [cpu(exponential(mean_cpu_s))],
        horizon_s=horizon_s,
        resources={"cpu_cores": cores},
        metrics=["ready_queue_len"],
    ).model_dump(mode="json", exclude_none=True)
    document["topology_graph"]["nodes"]["servers"][0]["admission"] = admission
    return parse_scenario(document)


@pytest.mark.parametrize(
    ("arrival_rate", "mean_cpu_s", "cores"),
    [
        pytest.param(40.0, 0.05, 2, id="c=2,a=2"),
        pytest.param(90.0, 0.05, 4, id="c=4,a=4.5"),
    ],
)
def test_a_concurrency_cap_of_c_on_c_cores_blocks_as_erlang_b(
    arrival_rate: float, mean_cpu_s: float, cores: int
) -> None:
    scenario = capped_station(
        arrival_rate, mean_cpu_s, cores, {"max_concurrency": cores}, horizon_s=600
    )
    exact = theory.erlang_b(cores, arrival_rate * mean_cpu_s)

    blocked = replicate(scenario, range(8), rejected_share)

    blocked.assert_covers(exact, f"M/M/{cores}/{cores} blocking")


@pytest.mark.parametrize(
    ("arrival_rate", "capacity", "seed"),
    [
        pytest.param(80.0, 5, 11, id="rho=0.8,K=5"),
        pytest.param(120.0, 3, 12, id="rho=1.2,K=3"),
    ],
)
def test_a_ready_queue_cap_on_one_core_is_mm1k(
    arrival_rate: float, capacity: int, seed: int
) -> None:
    service_rate = 100.0
    scenario = capped_station(
        arrival_rate, 1 / service_rate, 1, {"max_ready_queue": capacity - 1}, horizon_s=600
    )
    exact = theory.mm1k(arrival_rate, service_rate, capacity)

    lost = replicate(scenario, range(seed, seed + 6), rejected_share)
    lost.assert_covers(exact.lost, f"M/M/1/{capacity} loss")

    run = simulate(scenario, seed)
    assert_agrees(
        estimate(station_response_times(run)),
        theory.response_of_admitted(exact),
        f"M/M/1/{capacity} response of the admitted",
    )
    assert run.results.requests.rejected_at == {"srv": run.results.requests.rejected}


def impatient_station(
    arrival_rate: float,
    service_rate: float,
    cores: int,
    patience_rate: float,
    on_timeout: str,
    horizon_s: float,
) -> Scenario:
    """One server of `cores` cores and one exponential CPU step, whose client gives up after
    an exponential timeout of rate `patience_rate`."""
    document = one_server(
        arrival_rate,
        [cpu(exponential(1 / service_rate))],
        horizon_s=horizon_s,
        resources={"cpu_cores": cores},
        metrics=["ready_queue_len"],
    ).model_dump(mode="json", exclude_none=True)
    document["rqs_input"]["timeout_s"] = exponential(1 / patience_rate)
    document["rqs_input"]["on_timeout"] = on_timeout
    return parse_scenario(document)


def ended_share(reason: str) -> Any:
    """The fraction of generated requests that ended for `reason`."""

    def share(results: SimulationResults) -> float:
        ended = sum(e.count for e in results.requests.ends if e.reason == reason)
        return ended / results.requests.generated

    return share


@pytest.mark.parametrize(
    ("arrival_rate", "service_rate", "cores", "patience_rate", "seed"),
    [
        pytest.param(22.0, 10.0, 2, 2.0, 21, id="c=2,rho=1.1,theta=2"),
        pytest.param(25.0, 10.0, 3, 5.0, 31, id="c=3,rho=0.83,theta=5"),
    ],
)
def test_cancelled_timeouts_abandon_the_ready_queue_as_erlang_a(
    arrival_rate: float, service_rate: float, cores: int, patience_rate: float, seed: int
) -> None:
    scenario = impatient_station(
        arrival_rate, service_rate, cores, patience_rate, "cancel", horizon_s=600
    )
    exact = theory.erlang_a(arrival_rate, service_rate, cores, patience_rate)
    seeds = range(seed, seed + 6)

    abandoned = replicate(scenario, seeds, ended_share("withdrawn_from_ready_queue"))
    abandoned.assert_covers(exact.lost, "Erlang A fraction abandoned")

    # Patience is memoryless: one that reached a core outlasts its burst with odds mu : theta.
    in_service = replicate(scenario, seeds, ended_share("stopped_after_cpu_step"))
    in_service.assert_covers(
        (1 - exact.lost) * patience_rate / (patience_rate + service_rate),
        "timed out during the CPU burst",
    )

    run = simulate(scenario, seed)
    # The mean wait over every arrival is Lq / lambda: Little's law on the ready queue.
    assert_agrees(
        estimate(run.series("ready_queue_len", "srv")),
        exact.queue_length,
        "Erlang A requests waiting for a core (Lq = lambda Wq)",
        max_relative_error=0.08,
    )


def test_timeouts_that_keep_working_leave_the_queue_mm1_and_time_out_as_its_response() -> None:
    arrival_rate, service_rate, patience_rate = 8.0, 10.0, 2.0
    scenario = impatient_station(
        arrival_rate, service_rate, 1, patience_rate, "keep_working", horizon_s=1500
    )
    # The response time of M/M/1 is exponential of rate mu - lambda, so it outlasts an
    # exponential patience with probability theta / (theta + mu - lambda).
    exact = patience_rate / (patience_rate + service_rate - arrival_rate)

    timed_out = replicate(scenario, range(41, 47), ended_share("client_timeout"))
    timed_out.assert_covers(exact, "M/M/1 fraction timed out")

    run = simulate(scenario, 41)
    requests = run.results.requests
    # The servers finished the work: nearly every timed-out request came back late.
    assert requests.late_answers == pytest.approx(requests.timed_out, rel=0.01)
    assert run.results.throughput.goodput_rps == pytest.approx(arrival_rate * (1 - exact), rel=0.05)
    assert run.results.throughput.mean_rps == pytest.approx(arrival_rate, rel=0.03)
