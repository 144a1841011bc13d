"""The closed forms of `metrics.theory` against textbook values and against each other."""

import math
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest

from asyncflow_backend.metrics import theory
from asyncflow_backend.samplers import variate
from asyncflow_backend.samplers.streams import RandomStreams
from asyncflow_backend.schemas.random_variables import RVConfig


def erlang_c_by_sums(servers: int, offered_load: float) -> float:
    """Erlang C from its textbook sum of Poisson terms, as an independent check."""
    rho = offered_load / servers
    top = offered_load**servers / math.factorial(servers) / (1 - rho)
    below = sum(offered_load**k / math.factorial(k) for k in range(servers))
    return top / (below + top)


def test_mm1_textbook_values() -> None:
    q = theory.mm1(arrival_rate=80, service_rate=100)

    assert q.utilisation == pytest.approx(0.8)
    assert q.response == pytest.approx(0.05)
    assert q.wait == pytest.approx(0.04)
    assert q.in_system == pytest.approx(4.0)
    assert q.queue_length == pytest.approx(3.2)


@pytest.mark.parametrize(
    ("servers", "offered_load"), [(1, 0.5), (2, 1.6), (4, 3.2), (10, 9.5), (50, 45.0)]
)
def test_erlang_c_matches_the_textbook_sum(servers: int, offered_load: float) -> None:
    assert theory.erlang_c(servers, offered_load) == pytest.approx(
        erlang_c_by_sums(servers, offered_load), rel=1e-12
    )


def test_erlang_c_of_one_server_is_the_utilisation() -> None:
    assert theory.erlang_c(1, 0.7) == pytest.approx(0.7)


def test_erlang_b_known_value() -> None:
    # Two servers offered one erlang: B = (1/2) / (1 + 1 + 1/2).
    assert theory.erlang_b(2, 1.0) == pytest.approx(0.2)


def test_mmc_with_one_core_is_mm1() -> None:
    assert theory.mmc(70, 100, 1).response == pytest.approx(theory.mm1(70, 100).response)


def test_mmc_two_cores_closed_form() -> None:
    # For c = 2, W = 1 / (mu (1 - rho^2)).
    rho = 0.8
    assert theory.mmc(160, 100, 2).response == pytest.approx(1 / (100 * (1 - rho**2)))


def test_more_cores_at_the_same_utilisation_wait_less() -> None:
    waits = [theory.mmc(0.8 * c * 100, 100, c).wait for c in (1, 2, 4, 8)]
    assert waits == sorted(waits, reverse=True)


def test_mg1_with_exponential_service_is_mm1() -> None:
    assert theory.mg1(80, 0.01, 2 * 0.01**2).response == pytest.approx(0.05)


def test_md1_waits_half_as_long_as_mm1() -> None:
    assert theory.md1(80, 0.01).wait == pytest.approx(theory.mm1(80, 100).wait / 2)


def test_gim1_with_poisson_arrivals_is_mm1() -> None:
    lam, mu = 60.0, 100.0
    q = theory.gim1(lam, mu, lambda s: lam / (lam + s))
    assert q.response == pytest.approx(theory.mm1(lam, mu).response, rel=1e-9)


def test_round_robin_share_is_more_regular_than_poisson() -> None:
    share = theory.round_robin_share(total_rate=160, servers=2, service_rate=100)
    assert share.arrival_rate == pytest.approx(80)
    assert share.utilisation == pytest.approx(0.8)
    assert theory.md1(80, 0.01).wait < share.wait < theory.mm1(80, 100).wait
    # The root sigma = W mu (1 - sigma) solves sigma = (L / (L + mu (1 - sigma)))^2.
    sigma = share.wait / share.response
    assert sigma == pytest.approx((160 / (160 + 100 * (1 - sigma))) ** 2, rel=1e-9)


def test_round_robin_over_one_server_is_mm1() -> None:
    assert theory.round_robin_share(70, 1, 100).response == pytest.approx(
        theory.mm1(70, 100).response, rel=1e-9
    )


def test_infinite_server_delay() -> None:
    q = theory.infinite_server_delay(50, 0.02)
    assert (q.wait, q.response, q.in_system) == (0.0, 0.02, pytest.approx(1.0))


@pytest.mark.parametrize(
    "unstable",
    [
        lambda: theory.mm1(100, 100),
        lambda: theory.mmc(250, 100, 2),
        lambda: theory.md1(120, 0.01),
        lambda: theory.mg1(100, 0.01, 0.0002),
        lambda: theory.erlang_c(2, 2.0),
        lambda: theory.round_robin_share(300, 2, 100),
    ],
)
def test_unstable_queues_have_no_mean(unstable: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="unstable"):
        unstable()


def test_mm1_response_cdf_is_exponential() -> None:
    median = math.log(2) / (100 - 80)
    assert theory.mm1_response_cdf(median, 80, 100) == pytest.approx(0.5)
    assert theory.mm1_response_cdf(0.0, 80, 100) == 0.0


@pytest.mark.parametrize(
    "spec",
    [
        RVConfig(mean=0.01, distribution="deterministic"),
        RVConfig(mean=0.01, distribution="exponential"),
        RVConfig(mean=3.0, distribution="poisson"),
        RVConfig(mean=0.01, distribution="log_normal", variance=2e-4),
        RVConfig(mean=0.01, distribution="normal", variance=1e-6),
        RVConfig(mean=0.01, distribution="normal", variance=4e-4),
        RVConfig(mean=0.01, distribution="uniform"),
        RVConfig(mean=0.01, distribution="uniform", variance=1e-5),
        RVConfig(mean=0.01, distribution="uniform", variance=1e-4),
    ],
    ids=lambda spec: f"{spec.distribution}-{spec.variance}",
)
def test_duration_moments_match_what_the_samplers_draw(spec: RVConfig) -> None:
    """Moments, clipping at zero included, agree with a million draws within 4 standard errors."""
    draw = variate(spec, RandomStreams(7).generator("moments"))
    values = np.fromiter((draw() for _ in range(1_000_000)), dtype=np.float64)
    moments = theory.duration_moments(spec)

    n = math.sqrt(values.size)
    squares = values * values
    assert abs(values.mean() - moments.mean) <= 4 * values.std() / n + 1e-15
    assert abs(squares.mean() - moments.second) <= 4 * squares.std() / n + 1e-15


def test_duration_moments_of_a_number() -> None:
    moments = theory.duration_moments(0.5)
    assert (moments.mean, moments.second, moments.variance, moments.scv) == (0.5, 0.25, 0, 0)


def test_mmc_response_time_of_one_core_is_mm1s_exponential() -> None:
    t = 0.05
    assert theory.mmc_response_survival(t, 70, 100, 1) == pytest.approx(math.exp(-30 * t))
    assert theory.mmc_response_quantile(0.95, 70, 100, 1) == pytest.approx(math.log(20) / 30)


def test_mmc_response_quantile_against_a_monte_carlo_of_its_parts() -> None:
    # Wait: 0 with probability 1 - C, else exponential of rate c mu - lambda; plus the service.
    arrival, mu, cores = 170.0, 100.0, 2
    waits = theory.erlang_c(cores, arrival / mu)
    rng = np.random.default_rng(8)
    n = 400_000
    wait = np.where(rng.random(n) < waits, rng.exponential(1 / (cores * mu - arrival), n), 0.0)
    response = wait + rng.exponential(1 / mu, n)
    p95 = theory.mmc_response_quantile(0.95, arrival, mu, cores)
    assert float(np.mean(response > p95)) == pytest.approx(0.05, abs=0.002)
    assert theory.mmc_response_survival(0.0, arrival, mu, cores) == pytest.approx(1.0)


def test_mmc_response_survival_where_the_two_rates_meet() -> None:
    # theta = c mu - lambda = mu: the sum of two exponentials is Erlang-2.
    near = theory.mmc_response_survival(0.02, 100.0 + 1e-7, 100.0, 2)
    assert theory.mmc_response_survival(0.02, 100.0, 100.0, 2) == pytest.approx(near, rel=1e-5)


def test_mm1k_matches_its_closed_form() -> None:
    rho, capacity = 0.8, 5
    exact = theory.mm1k(8.0, 10.0, capacity)

    assert exact.lost == pytest.approx((1 - rho) * rho**capacity / (1 - rho ** (capacity + 1)))
    in_system = rho / (1 - rho) - (capacity + 1) * rho ** (capacity + 1) / (
        1 - rho ** (capacity + 1)
    )
    assert exact.in_system == pytest.approx(in_system)
    assert theory.response_of_admitted(exact) == pytest.approx(in_system / (8.0 * (1 - exact.lost)))


def test_erlang_a_tends_to_erlang_b_and_to_erlang_c_at_the_extremes_of_patience() -> None:
    assert theory.erlang_a(20.0, 10.0, 3, 1e7).lost == pytest.approx(
        theory.erlang_b(3, 2.0), rel=1e-4
    )
    patient = theory.erlang_a(20.0, 10.0, 3, 1e-7)
    assert patient.lost == pytest.approx(0.0, abs=1e-6)
    assert patient.wait == pytest.approx(theory.mmc(20.0, 10.0, 3).wait, rel=1e-4)


@pytest.mark.parametrize(
    ("arrival_rate", "service_rate", "servers", "abandonment_rate"),
    [(20.0, 10.0, 3, 1.0), (20.0, 10.0, 3, 1e-3), (40.0, 10.0, 3, 1e-3), (5.0, 10.0, 3, 0.5)],
)
def test_the_truncated_erlang_a_chain_gives_the_means_of_the_whole_chain(
    arrival_rate: float, service_rate: float, servers: int, abandonment_rate: float
) -> None:
    # The chain laid out far past where its weight ends (4 c + 4 lambda / theta states,
    # beyond the mode c + (lambda - c mu)^+ / theta), solved in one piece.
    size = 4 * servers + 4 * math.ceil(arrival_rate / abandonment_rate)
    n = np.arange(1, size + 1)
    deaths = np.minimum(n, servers) * service_rate + np.maximum(n - servers, 0) * abandonment_rate
    pi = theory.birth_death_distribution(np.full(size, arrival_rate), deaths)
    states = np.arange(size + 1)
    queue_length = float(np.maximum(states - servers, 0) @ pi)

    truncated = theory.erlang_a(arrival_rate, service_rate, servers, abandonment_rate)

    assert truncated.in_system == pytest.approx(float(states @ pi), rel=1e-12)
    assert truncated.queue_length == pytest.approx(queue_length, rel=1e-12)
    assert truncated.lost == pytest.approx(
        queue_length * abandonment_rate / arrival_rate, rel=1e-12
    )


@pytest.mark.parametrize("abandonment_rate", [1e-5, 1e-7])
def test_erlang_a_with_a_patience_of_days_runs_in_small_memory(abandonment_rate: float) -> None:
    # lambda / theta is 2e6 states for the larger rate, 2e8 for the smaller: laid out
    # whole, the chain takes about 0.1 and 11 GB.
    tracemalloc.start()
    try:
        metrics = theory.erlang_a(20.0, 10.0, 3, abandonment_rate)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 16 * 2**20
    assert metrics.wait == pytest.approx(theory.mmc(20.0, 10.0, 3).wait, rel=1e-4)


@pytest.mark.parametrize(
    ("arrival_rate", "service_rate", "failure_rate", "repair_rate"),
    [(0.5, 1, 0.05, 0.2), (0.5, 1, 0.2, 1), (3, 5, 0.3, 2.5), (0.9, 1, 0.001, 0.05)],
)
def test_the_breakdown_chain_gives_the_closed_form_of_the_mm1_with_breakdowns(
    arrival_rate: float, service_rate: float, failure_rate: float, repair_rate: float
) -> None:
    # L = r / (1 - r) + lambda xi / (A (xi + eta)^2 (1 - r)), r = lambda / (mu A): the
    # M/M/1 at the service rate mu A it gets in the long run, plus the backlog the
    # repairs leave; it follows from the chain's generating functions.
    a = repair_rate / (failure_rate + repair_rate)
    r = arrival_rate / (service_rate * a)
    closed = r / (1 - r) + arrival_rate * failure_rate / (
        a * (failure_rate + repair_rate) ** 2 * (1 - r)
    )

    chain = theory.mm1_with_breakdowns(arrival_rate, service_rate, failure_rate, repair_rate)

    assert chain.availability == pytest.approx(a)
    assert chain.mean_in_system == pytest.approx(closed, rel=1e-8)
    assert chain.response_time == pytest.approx(closed / arrival_rate, rel=1e-8)
    assert chain.lost_fraction == 0


def test_the_breakdown_chain_refuses_an_unstable_queue_and_a_short_truncation() -> None:
    with pytest.raises(ValueError, match="unstable"):
        theory.mm1_with_breakdowns(0.9, 1, 0.2, 1)  # mu A = 0.83 < 0.9
    with pytest.raises(ValueError, match="truncation"):
        theory.mm1_with_breakdowns(0.7, 1, 0.05, 0.2, truncation=20)


def test_losing_work_at_failures_loses_more_the_longer_the_queue() -> None:
    light = theory.mm1_with_breakdowns(0.2, 1, 0.2, 1, lose=True)
    heavy = theory.mm1_with_breakdowns(0.8, 1, 0.2, 1, lose=True)

    assert 0 < light.lost_fraction < heavy.lost_fraction < 1
    # Losing work keeps the station shorter than resuming it.
    assert heavy.mean_in_system < 20


def test_a_token_bucket_of_one_token_blocks_as_erlang_b_and_an_overload_passes_the_rate() -> None:
    assert theory.token_bucket_rejection(10, 20, 1) == pytest.approx(theory.erlang_b(1, 0.5))
    # Far past its rate the bucket lets through about its rate, whatever its burst.
    assert theory.token_bucket_rejection(2000, 20, 5) == pytest.approx(1 - 20 / 2000, abs=1e-3)
    # A larger burst rejects less, and nothing below its rate in the limit of a huge one.
    losses = [theory.token_bucket_rejection(18, 20, b) for b in (1, 2, 5, 20, 60)]
    assert losses == sorted(losses, reverse=True)
    assert losses[-1] < 0.01
    with pytest.raises(ValueError, match="positive"):
        theory.token_bucket_rejection(10, 20, 0)
