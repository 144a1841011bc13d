"""The event loop's CPU per request, as a user reads it, falls with load toward its floor.

One core, Poisson arrivals, a deterministic 4 ms burst per request, `per_iteration_s` 0.5 ms
and `per_callback_s` 0.1 ms. The CPU per request is read as the engine reports it:
utilisation x horizon / completed requests (utilisation over throughput).

- At low load every request finds the loop idle, so it costs burst + per_iteration_s +
  per_callback_s. A burst shares an iteration only if it waited behind another burst that
  also waited, which needs two requests ahead of it: probability O(rho^2). The tolerance is
  that share of per_iteration_s plus the horizon's edge (a burst started and not yet
  answered, two per run at most, over the requests).
- As the load grows, batches grow and the cost per request falls; near saturation it
  approaches burst + per_callback_s. Each gap is checked against the binomial standard
  error of the share of bursts that opened an iteration, widened tenfold for the
  correlation between neighbouring bursts.
"""

import math

import pytest

from asyncflow_backend.runtime.actors.event_loop import PolledCores
from asyncflow_backend.runtime.runner import SimulationRunner
from support.scenarios import looped_server

pytestmark = pytest.mark.statistical

BURST_S = 0.004
ITERATION_S = 0.0005
CALLBACK_S = 0.0001
ALONE_S = BURST_S + ITERATION_S + CALLBACK_S
FLOOR_S = BURST_S + CALLBACK_S
REQUESTS = 20_000


def cpu_per_request(rate: float, seed: int) -> tuple[float, float, int]:
    """(CPU seconds per completed request, share of bursts that opened an iteration,
    completed requests) at `rate` requests/s."""
    horizon = REQUESTS / rate
    builder = looped_server(
        cpu_s=BURST_S, per_iteration_s=ITERATION_S, per_callback_s=CALLBACK_S, horizon_s=horizon
    ).arrival_rate("gen", "steps", [(0, rate)])
    runner = SimulationRunner(builder.build(), seed=seed)
    results = runner.run()
    completed = results.requests.completed
    cores = runner.model.servers["srv"].cores
    assert isinstance(cores, PolledCores)
    opened = cores.iterations / cores.callbacks
    return results.servers["srv"].cpu_utilisation * horizon / completed, opened, completed


def standard_error(opened: float, count: int) -> float:
    return 10 * ITERATION_S * math.sqrt(opened * (1 - opened) / count)


def test_at_low_load_each_request_pays_one_iteration_and_one_callback() -> None:
    rate = 10.0
    measured, opened, count = cpu_per_request(rate, seed=501)

    rho = rate * ALONE_S
    tolerance = rho**2 * ITERATION_S + 2 * ALONE_S / count
    assert measured == pytest.approx(ALONE_S, abs=tolerance)
    assert opened > 1 - rho**2


def test_the_cpu_per_request_falls_with_load_toward_burst_and_callback() -> None:
    low, low_opened, low_count = cpu_per_request(10.0, seed=502)
    mid, mid_opened, mid_count = cpu_per_request(120.0, seed=503)
    high, high_opened, high_count = cpu_per_request(230.0, seed=504)

    assert low - mid > standard_error(low_opened, low_count) + standard_error(mid_opened, mid_count)
    assert mid - high > standard_error(mid_opened, mid_count) + standard_error(
        high_opened, high_count
    )
    # Near saturation (230 x 4.1 ms = 94% of the core without iterations) most bursts
    # run in a batch: less than half an iteration each.
    assert FLOOR_S < high < FLOOR_S + ITERATION_S / 2
