"""The statistics module: t intervals, batch means and MSER-5 warm-up detection."""

import math

import numpy as np
import pytest
from scipy import stats

from asyncflow_backend.statistics import Estimate, batch_means, mser5, summarise, t_quantile


def test_t_quantile_is_scipys() -> None:
    assert t_quantile(0.975, 4) == pytest.approx(2.7764451, rel=1e-6)
    assert t_quantile(0.975, 10_000) == pytest.approx(stats.norm.ppf(0.975), rel=1e-3)


@pytest.mark.parametrize(("probability", "dof"), [(0.0, 3), (1.0, 3), (0.9, 0)])
def test_t_quantile_refuses_impossible_arguments(probability: float, dof: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        t_quantile(probability, dof)


def test_summary_of_known_values() -> None:
    summary = summarise([1.0, 2.0, 3.0, 4.0, 5.0], confidence=0.95)
    error = math.sqrt(2.5 / 5)
    half = 2.7764451 * error
    assert summary.n == 5
    assert summary.mean == pytest.approx(3.0)
    assert summary.standard_error == pytest.approx(error)
    assert (summary.low, summary.high) == pytest.approx((3.0 - half, 3.0 + half), rel=1e-6)
    assert summary.relative_half_width == pytest.approx(half / 3.0, rel=1e-6)
    assert summary.upper_bound(0.95) == pytest.approx(3.0 + stats.t.ppf(0.95, 4) * error)
    assert summary.lower_bound(0.95) == pytest.approx(3.0 - stats.t.ppf(0.95, 4) * error)


def test_summary_leaves_out_missing_values_and_has_no_interval_below_two() -> None:
    assert summarise([None, 2.0]).n == 1
    one = summarise([None, 2.0])
    assert (one.mean, one.standard_error, one.low, one.high) == (2.0, None, None, None)
    assert one.upper_bound(0.9) is None
    assert summarise([]).mean is None
    assert summarise([None]).relative_half_width is None


def test_summary_refuses_a_confidence_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="confidence"):
        summarise([1.0, 2.0], confidence=1.0)


def test_t_intervals_cover_a_normal_mean_at_their_nominal_rate() -> None:
    rng = np.random.default_rng(11)
    samples = rng.normal(5.0, 2.0, size=(4000, 5))
    covered = 0
    for row in samples:
        s = summarise(row.tolist(), confidence=0.9)
        assert s.low is not None
        assert s.high is not None
        covered += s.low <= 5.0 <= s.high
    # 4000 intervals: the rate is 0.9 within +-0.015 at three binomial errors.
    assert abs(covered / 4000 - 0.9) < 0.015


def test_mser5_finds_a_transient_and_leaves_a_stationary_sequence_whole() -> None:
    rng = np.random.default_rng(5)
    transient = np.linspace(50.0, 1.0, 400) + rng.normal(0, 0.5, 400)
    stationary = 1.0 + rng.normal(0, 0.5, 4600)
    cut = mser5(np.concatenate([transient, stationary]))
    assert 300 <= cut <= 600
    assert cut % 5 == 0
    assert mser5(1.0 + rng.normal(0, 0.5, 5000)) < 250


def test_mser5_of_a_short_sequence_truncates_nothing() -> None:
    assert mser5(np.arange(10.0)) == 0
    assert mser5(np.empty(0)) == 0


def test_batch_means_of_independent_samples() -> None:
    rng = np.random.default_rng(3)
    samples = rng.normal(10.0, 2.0, 300_000)

    est = batch_means(samples, batches=30, warmup_fraction=0.0)

    assert abs(est.mean - 10.0) <= 4 * 2.0 / math.sqrt(samples.size)
    # With independent samples the batch standard error estimates sigma / sqrt(n);
    # with 30 batches it is itself within about +-40% at 3 of its own errors.
    assert est.standard_error == pytest.approx(2.0 / math.sqrt(samples.size), rel=0.4)
    assert est.batches == 30


def test_batch_means_sees_correlation_that_the_naive_error_misses() -> None:
    rng = np.random.default_rng(4)
    phi, n = 0.99, 300_000
    noise = rng.normal(0.0, 1.0, n)
    samples = np.empty(n)
    level = 0.0
    for i in range(n):
        level = phi * level + noise[i]
        samples[i] = level
    naive = samples.std() / math.sqrt(n)
    # An AR(1) sequence has a variance of the mean (1 + phi) / (1 - phi) times the naive one.
    expected = naive * math.sqrt((1 + phi) / (1 - phi))

    est = batch_means(samples, batches=30, warmup_fraction=0.0)

    assert est.standard_error == pytest.approx(expected, rel=0.5)
    assert est.standard_error > 5 * naive


def test_batch_means_drops_the_warm_up() -> None:
    samples = np.concatenate([np.full(100, 1000.0), np.ones(900)])
    assert batch_means(samples, batches=10, warmup_fraction=0.1).mean == 1.0


def test_batch_means_needs_enough_samples() -> None:
    with pytest.raises(ValueError, match="too few"):
        batch_means(np.ones(50), batches=30)


def test_estimate_agreement_and_relative_error() -> None:
    est = Estimate(mean=1.025, standard_error=0.01, batches=30)
    assert est.relative_error(1.0) == pytest.approx(0.025)
    assert est.agrees_with(1.0, z=3.0)
    assert not est.agrees_with(1.0, z=2.0)
