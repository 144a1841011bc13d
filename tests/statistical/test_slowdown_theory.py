"""Slowdowns against theory: an M/M/1 queue whose service times are k times as long inside
a long window, and an edge whose fixed latency is k times as long.

A step's time is drawn when its service starts and scaled by the factor then in force, so
inside the window the station serves at rate mu/k: once it has settled (its relaxation
time at rho = 0.6 is about 1/(mu/k (1 - sqrt(rho))^2), 0.4 s, far below the margin), a
request that arrives there answers in 1/(mu/k - lambda) on average, and outside the
window, once the backlog has drained, in 1/(mu - lambda) (Kleinrock, *Queueing Systems*
vol. 1, §3.2). Each mean is a batch means estimate over the requests that arrived in its
stretch (about 1.1% and 0.8% standard error at the seed), within 3 standard errors of
theory and within 4%.
"""

import numpy as np
import pytest
from queue_models import (
    EDGE_LATENCY_S,
    assert_agrees,
    over_fixed_links,
    simulate,
    station_response_times,
)

from asyncflow_backend.metrics import theory
from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import parse_scenario
from asyncflow_backend.statistics import batch_means
from support.documents import (
    cpu,
    edge_slowdown,
    exponential,
    poisson_arrivals,
    server,
    slowdown,
    spike,
)
from support.topologies import direct

pytestmark = pytest.mark.statistical

ARRIVAL_RATE = 30.0
SERVICE_RATE = 100.0
FACTOR = 2.0
"""Inside the window the service rate is 50/s: the utilisation goes from 0.3 to 0.6."""
WINDOW = (1_000.0, 5_000.0)
HORIZON_S = 6_000.0
MARGIN_S = 50.0
"""Left out after each change, for the queue to settle (or, before the window closes,
so that every request kept started its service inside it)."""
BATCHES = 30


def response_times_in(
    created: np.ndarray, responses: np.ndarray, start: float, end: float
) -> np.ndarray:
    """The response times of the requests created in [start, end), in completion order
    (arrival order too: one core serves first come, first served)."""
    return responses[(created >= start) & (created < end)]


def test_mm1_slowed_by_k_answers_as_mm1_at_rate_mu_over_k_inside_the_window() -> None:
    window = slowdown("slow", "srv", start=WINDOW[0], end=WINDOW[1], factor=FACTOR)
    scenario = over_fixed_links(
        poisson_arrivals(ARRIVAL_RATE),
        [server("srv", cpu(exponential(1 / SERVICE_RATE)), endpoint_name="/work")],
        horizon_s=HORIZON_S,
        metrics=[],
        events=[window],
    )
    run = simulate(scenario, seed=2301, timed=True)
    created, responses = run.creation_times, station_response_times(run)

    inside = response_times_in(created, responses, WINDOW[0] + MARGIN_S, WINDOW[1] - MARGIN_S)
    before = response_times_in(created, responses, MARGIN_S, WINDOW[0])
    after = response_times_in(created, responses, WINDOW[1] + MARGIN_S, HORIZON_S - MARGIN_S)
    slowed = theory.mm1(ARRIVAL_RATE, SERVICE_RATE / FACTOR)
    plain = theory.mm1(ARRIVAL_RATE, SERVICE_RATE)

    assert len(inside) > 100_000
    assert_agrees(
        batch_means(inside, BATCHES, 0.0),
        slowed.response,
        f"M/M/1 slowed {FACTOR:g}x: W = 1/(mu/k - lambda)",
        max_relative_error=0.04,
    )
    outside = np.concatenate([before, after])
    assert_agrees(
        batch_means(outside, BATCHES, 0.0),
        plain.response,
        "M/M/1 outside the window: W = 1/(mu - lambda)",
        max_relative_error=0.04,
    )


LINK_S = 0.01
STEP_S = 0.001
EDGE_WINDOW = (10.0, 20.0)
SPIKE_WINDOW = (15.0, 20.0)
SPIKE_S = 0.02
EDGE_FACTOR = 5.0


def test_an_edge_slowdown_multiplies_a_fixed_latency_and_a_spike_adds_to_the_product() -> None:
    document = direct(
        poisson_arrivals(20),
        [server("srv", cpu(STEP_S), cpu_cores=64)],
        horizon_s=30,
        latency=LINK_S,
        events=[
            edge_slowdown(
                "slow", "client-srv", start=EDGE_WINDOW[0], end=EDGE_WINDOW[1], factor=EDGE_FACTOR
            ),
            spike(
                "spiky", "client-srv", start=SPIKE_WINDOW[0], end=SPIKE_WINDOW[1], spike_s=SPIKE_S
            ),
        ],
    )
    runner = SimulationRunner(parse_scenario(document), seed=7)
    collector = runner.model.collector
    collector.keep_completion_times()
    runner.run()
    latencies = np.frombuffer(collector.latencies, dtype=np.float64)
    assert collector.completion_times is not None
    created = np.frombuffer(collector.completion_times, dtype=np.float64) - latencies

    sent = created + LINK_S  # when the client puts the request on the slowed edge
    slowed = (sent >= EDGE_WINDOW[0]) & (sent < EDGE_WINDOW[1])
    spiked = (sent >= SPIKE_WINDOW[0]) & (sent < SPIKE_WINDOW[1])
    crossing = LINK_S * np.where(slowed, EDGE_FACTOR, 1.0) + np.where(spiked, SPIKE_S, 0.0)
    np.testing.assert_allclose(latencies, 2 * LINK_S + STEP_S + crossing, rtol=0, atol=1e-9)
    assert slowed.sum() > 100
    assert (slowed & ~spiked).sum() > 50
    assert EDGE_LATENCY_S < LINK_S  # the M/M/1 test's links stay negligible next to these
