"""One server fed by Poisson arrivals against the closed forms of queueing theory.

Each case runs long enough for a relative standard error of about 1% on the
mean response time (heavier traffic and more variable service need more
requests), then checks it against theory within 3 batch-means standard errors
and within 3.5%.
"""

from typing import Any

import pytest
from queue_models import (
    assert_agrees,
    estimate,
    simulate,
    station,
    station_response_times,
)

from asyncflow_backend.metrics import theory
from asyncflow_backend.schemas.random_variables import RVConfig
from support.documents import exponential

pytestmark = pytest.mark.statistical

MEAN_SERVICE_S = 0.01
SERVICE_RATE = 1 / MEAN_SERVICE_S


def horizon_for(arrivals: int, arrival_rate: float) -> float:
    """Seconds of simulated time that bring about `arrivals` requests."""
    return arrivals / arrival_rate


@pytest.mark.parametrize(
    ("utilisation", "arrivals", "seed"),
    [pytest.param(0.5, 120_000, 101, id="rho=0.5"), pytest.param(0.8, 400_000, 102, id="rho=0.8")],
)
def test_mm1_mean_response_time(utilisation: float, arrivals: int, seed: int) -> None:
    arrival_rate = utilisation * SERVICE_RATE
    run = simulate(
        station(
            arrival_rate,
            exponential(MEAN_SERVICE_S),
            horizon_s=horizon_for(arrivals, arrival_rate),
        ),
        seed,
    )
    exact = theory.mm1(arrival_rate, SERVICE_RATE)

    assert_agrees(estimate(station_response_times(run)), exact.response, "M/M/1 W")
    assert_agrees(
        estimate(run.series("ready_queue_len", "srv")),
        exact.queue_length,
        "M/M/1 Lq (sampled ready queue)",
        max_relative_error=0.1,
    )


@pytest.mark.parametrize(
    ("cores", "seed"), [pytest.param(2, 201, id="c=2"), pytest.param(4, 202, id="c=4")]
)
def test_mmc_mean_response_time_follows_erlang_c(cores: int, seed: int) -> None:
    arrival_rate = 0.8 * cores * SERVICE_RATE
    run = simulate(
        station(
            arrival_rate,
            exponential(MEAN_SERVICE_S),
            cores=cores,
            horizon_s=horizon_for(400_000, arrival_rate),
        ),
        seed,
    )
    exact = theory.mmc(arrival_rate, SERVICE_RATE, cores)

    assert_agrees(estimate(station_response_times(run)), exact.response, f"M/M/{cores} W")
    assert_agrees(
        estimate(run.series("ready_queue_len", "srv")),
        exact.queue_length,
        f"M/M/{cores} Lq (sampled ready queue)",
        max_relative_error=0.1,
    )


def test_md1_mean_response_time_follows_pollaczek_khinchine() -> None:
    arrival_rate = 0.8 * SERVICE_RATE
    run = simulate(
        station(arrival_rate, MEAN_SERVICE_S, horizon_s=horizon_for(350_000, arrival_rate)),
        seed=301,
    )
    exact = theory.md1(arrival_rate, MEAN_SERVICE_S)

    assert_agrees(estimate(station_response_times(run)), exact.response, "M/D/1 W")


@pytest.mark.parametrize(
    ("service", "utilisation", "arrivals", "seed"),
    [
        pytest.param(
            {"mean": MEAN_SERVICE_S, "distribution": "uniform"}, 0.8, 450_000, 401, id="uniform"
        ),
        pytest.param(
            {
                "mean": MEAN_SERVICE_S,
                "distribution": "log_normal",
                "variance": 2 * MEAN_SERVICE_S**2,
            },
            0.7,
            500_000,
            402,
            id="log_normal",
        ),
    ],
)
def test_mg1_mean_response_time_follows_pollaczek_khinchine(
    service: dict[str, Any], utilisation: float, arrivals: int, seed: int
) -> None:
    arrival_rate = utilisation * SERVICE_RATE
    run = simulate(
        station(arrival_rate, service, horizon_s=horizon_for(arrivals, arrival_rate)), seed
    )
    moments = theory.duration_moments(RVConfig.model_validate(service))
    exact = theory.mg1(arrival_rate, moments.mean, moments.second)

    assert_agrees(
        estimate(station_response_times(run)),
        exact.response,
        f"M/G/1 W, {service['distribution']} service (cs2 = {moments.scv:.3g})",
    )


def test_io_step_releases_the_core() -> None:
    """CPU then I/O: an M/M/1 for the CPU step followed by a pure delay.

    The I/O wait is five times the CPU time: were the core held through it, the
    load would be 4.2 cores' worth on one core and the queue would explode.
    """
    arrival_rate = 0.7 * SERVICE_RATE
    io_s = 5 * MEAN_SERVICE_S
    run = simulate(
        station(
            arrival_rate,
            exponential(MEAN_SERVICE_S),
            io_time=exponential(io_s),
            horizon_s=horizon_for(120_000, arrival_rate),
        ),
        seed=501,
    )
    cpu = theory.mm1(arrival_rate, SERVICE_RATE)
    io = theory.infinite_server_delay(arrival_rate, io_s)

    assert_agrees(
        estimate(station_response_times(run)), cpu.response + io.response, "M/M/1 + delay W"
    )
    assert_agrees(
        estimate(run.series("event_loop_io_sleep", "srv")),
        io.in_system,
        "requests in I/O wait (L = lambda E[io])",
    )
    # Busy core-seconds are a compound Poisson sum of exponential CPU times, with
    # variance lambda T E[S^2]: that gives the standard error of the utilisation.
    horizon = run.results.meta.simulated_seconds
    utilisation_se = (arrival_rate * 2 * MEAN_SERVICE_S**2 / horizon) ** 0.5
    utilisation = run.results.servers["srv"].cpu_utilisation
    assert abs(utilisation - cpu.utilisation) <= 3 * utilisation_se, (
        f"CPU utilisation {utilisation:.4f}, theory {cpu.utilisation:.4f} +- {utilisation_se:.1g}"
    )
