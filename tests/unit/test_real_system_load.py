"""The harness's open-loop load: a seeded Poisson schedule, and the check that it was kept."""

import numpy as np
import pytest
from scipy import stats

from benchmarks.real_system.load import LatenessPolicy, check_schedule, poisson_schedule


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    first = poisson_schedule(50.0, 20.0, seed=3)

    assert np.array_equal(first, poisson_schedule(50.0, 20.0, seed=3))
    assert not np.array_equal(first[:10], poisson_schedule(50.0, 20.0, seed=4)[:10])


def test_send_times_increase_within_the_duration() -> None:
    times = poisson_schedule(200.0, 5.0, seed=1)

    assert np.all(np.diff(times) > 0)
    assert times[0] >= 0
    assert times[-1] < 5.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_count_of_sends_is_within_the_poisson_interval(seed: int) -> None:
    # N(T) of a Poisson process of rate lambda is Poisson(lambda T): 99.9 % interval.
    rate, duration = 120.0, 30.0
    low, high = stats.poisson.interval(0.999, rate * duration)

    count = poisson_schedule(rate, duration, seed=seed).size

    assert low <= count <= high


def test_a_schedule_longer_than_its_first_block_keeps_its_rate() -> None:
    # The first block of gaps covers ~1.2 x the expected count; the rest is drawn on demand.
    rate, duration = 10.0, 2_000.0
    low, high = stats.poisson.interval(0.999, rate * duration)

    times = poisson_schedule(rate, duration, seed=9)

    assert low <= times.size <= high
    assert times[-1] > 0.99 * duration


def test_gaps_are_exponential_with_mean_one_over_the_rate() -> None:
    rate = 80.0
    gaps = np.diff(poisson_schedule(rate, 100.0, seed=5))

    # Kolmogorov-Smirnov against Exp(rate) at a fixed seed; the mean within its 99.9 % CI.
    assert stats.kstest(gaps, "expon", args=(0, 1 / rate)).pvalue > 0.001
    half_width = stats.norm.ppf(0.9995) * (1 / rate) / np.sqrt(gaps.size)
    assert abs(gaps.mean() - 1 / rate) < half_width


@pytest.mark.parametrize(("rate", "duration"), [(0.0, 10.0), (10.0, 0.0), (-1.0, 5.0)])
def test_a_schedule_needs_a_positive_rate_and_duration(rate: float, duration: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        poisson_schedule(rate, duration, seed=1)


def test_sends_on_time_keep_the_schedule() -> None:
    verdict = check_schedule([0.0002] * 1000, LatenessPolicy())

    assert verdict.kept
    assert verdict.sends == 1000
    assert verdict.reason == "kept"


def test_a_p99_lateness_over_the_limit_is_refused() -> None:
    # 2 % of sends 3 ms late: p99 = 3 ms > 1 ms, but none later than 5 ms.
    lateness = [0.0] * 980 + [0.003] * 20

    verdict = check_schedule(lateness, LatenessPolicy(max_p99_s=0.001))

    assert not verdict.kept
    assert verdict.p99_s == pytest.approx(0.003)
    assert "p99 lateness 3.00 ms > 1.00 ms" in verdict.reason


def test_too_many_very_late_sends_are_refused_even_with_a_good_p99() -> None:
    # 0.5 % of sends 50 ms late: the p99 is 0, but the share later than 5 ms is over 0.2 %.
    lateness = [0.0] * 995 + [0.05] * 5

    verdict = check_schedule(lateness, LatenessPolicy(max_share_late=0.002))

    assert not verdict.kept
    assert verdict.share_late == pytest.approx(0.005)
    assert "0.5% of sends later than 5.0 ms" in verdict.reason
    assert verdict.max_s == pytest.approx(0.05)


def test_a_run_without_sends_is_refused() -> None:
    verdict = check_schedule([], LatenessPolicy())

    assert not verdict.kept
    assert verdict.reason == "no sends"
