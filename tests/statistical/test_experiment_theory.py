"""Experiments against theory: interval coverage on M/M/1, capacity search on M/M/c."""

import pytest
from queue_models import EDGE_LATENCY_S, station

from asyncflow_backend.experiments import ExperimentSpec, prepare, run_experiment
from asyncflow_backend.metrics import theory
from support.documents import exponential

pytestmark = pytest.mark.statistical

SERVICE_RATE = 100.0


def scenario_data(arrival_rate: float, horizon_s: float, cores: int = 1) -> dict[str, object]:
    scenario = station(
        arrival_rate, exponential(1 / SERVICE_RATE), horizon_s=horizon_s, cores=cores
    )
    return scenario.model_dump(mode="json", exclude_none=True)


def test_t_intervals_of_replications_cover_the_mm1_mean_response_time() -> None:
    # 200 experiments of 5 replications of 20 s at rho = 0.5, each leaving out its first
    # second. The interval is t-based on 5 values, so the rate should be near 95%; the
    # binomial error of a rate from 200 trials is 1.5%.
    arrival_rate = 50.0
    truth = theory.mm1(arrival_rate, SERVICE_RATE).response + 3 * EDGE_LATENCY_S
    data = scenario_data(arrival_rate, horizon_s=20.0)
    experiments = 200
    covered = 0
    for k in range(experiments):
        spec = ExperimentSpec(scenario=data, seed=1000 + k, replications=5, warmup_s=1.0)
        summary = run_experiment(prepare(spec)).points[0].summary["latency.mean"]
        assert summary.low is not None
        assert summary.high is not None
        covered += summary.low <= truth <= summary.high
    rate = covered / experiments
    assert 0.92 <= rate <= 0.98, f"95% intervals covered the truth {rate:.1%} of the time"


def test_capacity_search_on_mmc_brackets_the_load_whose_p95_is_the_slo() -> None:
    # M/M/2 with mu = 100/s: the arrival rate whose p95 response time is 50 ms, from the
    # response-time distribution of M/M/c (theory.mmc_response_quantile).
    slo_s, base_rate, cores = 0.05, 100.0, 2
    low_rate, high_rate = 100.0, 199.0
    while high_rate - low_rate > 1e-6:
        middle = (low_rate + high_rate) / 2
        p95 = theory.mmc_response_quantile(0.95, middle, SERVICE_RATE, cores)
        low_rate, high_rate = (middle, high_rate) if p95 < slo_s else (low_rate, middle)
    true_factor = low_rate / base_rate

    spec = ExperimentSpec(
        scenario=scenario_data(base_rate, horizon_s=40.0, cores=cores),
        seed=5,
        replications=8,
        warmup_s=2.0,
        search={
            "load": "arrival_rate",
            "objective": {"metric": "latency.p95", "at_most": slo_s},
            "tolerance": 0.03,
            "max_replications": 16,
        },
    )
    report = run_experiment(prepare(spec))

    search = report.search
    assert search is not None
    assert search.status == "found", search.message
    assert search.low is not None
    assert search.high is not None
    assert search.low <= true_factor <= search.high, (
        f"capacity interval [{search.low:g}, {search.high:g}] misses the theory's {true_factor:g}"
    )
    assert (search.high - search.low) / true_factor < 0.1
    assert search.capacity == search.low
    factors = [p.factor for p in report.points]
    assert factors == sorted(factors)
    assert len(factors) >= 4
