"""Samplers draw what the scenario language documents, reproducibly and independently.

Moments are checked against a few hundred thousand draws, within 4 standard
errors of the sample moment (the standard error itself estimated from the draws).
"""

import math

import numpy as np
import pytest

from asyncflow_backend.samplers import RandomStreams, constant, variate
from asyncflow_backend.samplers.variates import BATCH
from asyncflow_backend.schemas.clipping import clipped_moments
from asyncflow_backend.schemas.random_variables import RVConfig

DRAWS = 400_000
Z = 4.0


def draws(spec: float | RVConfig, seed: int = 11, name: str = "test", n: int = DRAWS) -> np.ndarray:
    sample = variate(spec, RandomStreams(seed).generator(name))
    return np.fromiter((sample() for _ in range(n)), dtype=np.float64, count=n)


def assert_mean(values: np.ndarray, expected: float) -> None:
    se = values.std() / math.sqrt(values.size)
    assert abs(values.mean() - expected) <= Z * se, (
        f"mean {values.mean():.6g}, expected {expected:.6g} +- {se:.2g}"
    )


def assert_variance(values: np.ndarray, expected: float) -> None:
    deviations = (values - values.mean()) ** 2
    se = deviations.std() / math.sqrt(values.size)
    assert abs(deviations.mean() - expected) <= Z * se, (
        f"variance {deviations.mean():.6g}, expected {expected:.6g} +- {se:.2g}"
    )


def test_exponential() -> None:
    values = draws(RVConfig(mean=0.2, distribution="exponential"))
    assert_mean(values, 0.2)
    assert_variance(values, 0.04)


def test_poisson_takes_whole_values() -> None:
    values = draws(RVConfig(mean=4.5, distribution="poisson"))
    assert_mean(values, 4.5)
    assert_variance(values, 4.5)
    assert np.array_equal(values, np.round(values))


def test_normal_uses_the_variance_as_a_variance() -> None:
    values = draws(RVConfig(mean=10.0, distribution="normal", variance=4.0))
    assert_mean(values, 10.0)
    assert_variance(values, 4.0)


def test_normal_without_variance_defaults_it_to_the_mean() -> None:
    values = draws(RVConfig(mean=50.0, distribution="normal"))
    assert_variance(values, 50.0)


def test_normal_is_clipped_at_zero() -> None:
    """sd = 1, mean 0.5: about 31% of raw draws are negative and become 0."""
    values = draws(RVConfig(mean=0.5, distribution="normal", variance=1.0))
    assert values.min() == 0.0
    negative_share = 0.5 * math.erfc(0.5 / math.sqrt(2))
    share = np.mean(values == 0.0)
    assert abs(share - negative_share) <= Z * math.sqrt(negative_share / DRAWS)


def test_log_normal_has_its_own_mean_and_variance() -> None:
    """The parameters are those of the log-normal itself, not of the underlying normal."""
    values = draws(RVConfig(mean=2.0, distribution="log_normal", variance=1.0))
    assert_mean(values, 2.0)
    assert_variance(values, 1.0)
    assert values.min() > 0


def test_uniform_with_variance_spans_mean_plus_minus_root_three_variance() -> None:
    values = draws(RVConfig(mean=10.0, distribution="uniform", variance=3.0))
    half = math.sqrt(3 * 3.0)
    assert values.min() >= 10.0 - half
    assert values.max() <= 10.0 + half
    assert values.min() == pytest.approx(10.0 - half, abs=1e-3)
    assert values.max() == pytest.approx(10.0 + half, abs=1e-3)
    assert_mean(values, 10.0)
    assert_variance(values, 3.0)


def test_uniform_without_variance_spans_zero_to_twice_the_mean() -> None:
    values = draws(RVConfig(mean=5.0, distribution="uniform"))
    assert values.min() >= 0.0
    assert values.max() <= 10.0
    assert values.max() == pytest.approx(10.0, abs=1e-3)
    assert_mean(values, 5.0)
    assert_variance(values, 10.0**2 / 12)


@pytest.mark.parametrize(
    "spec",
    [
        RVConfig(mean=1.0, distribution="uniform", variance=3.0),
        RVConfig(mean=0.5, distribution="normal", variance=1.0),
        RVConfig(mean=0.0, distribution="normal", variance=4.0),
        RVConfig(mean=2.0, distribution="uniform", variance=1.0),
    ],
    ids=str,
)
def test_clipped_draws_have_the_mean_and_zero_share_the_warnings_compute(spec: RVConfig) -> None:
    values = draws(spec)
    mean, below = clipped_moments(spec)
    assert_mean(values, mean)
    share = np.mean(values == 0.0)
    assert abs(share - below) <= Z * math.sqrt(below * (1 - below) / DRAWS)


def test_the_uniform_of_mean_1_and_variance_3_averages_4_thirds_with_a_third_zeros() -> None:
    # Uniform on [-2, 4] with its negative draws at 0: E = 4² / (2 x 6), P(0) = 2 / 6.
    mean, below = clipped_moments(RVConfig(mean=1.0, distribution="uniform", variance=3.0))
    assert mean == pytest.approx(4 / 3)
    assert below == pytest.approx(1 / 3)


def test_deterministic_and_plain_numbers_are_constant() -> None:
    assert set(draws(RVConfig(mean=0.3, distribution="deterministic"), n=1000)) == {0.3}
    assert set(draws(0.7, n=1000)) == {0.7}
    sample = constant(2)
    assert [sample() for _ in range(3)] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    "spec",
    [
        RVConfig(mean=0.1, distribution="normal", variance=1.0),
        RVConfig(mean=0.1, distribution="uniform", variance=1.0),
        RVConfig(mean=0.1, distribution="exponential"),
        RVConfig(mean=0.1, distribution="log_normal", variance=5.0),
        RVConfig(mean=0.1, distribution="poisson"),
    ],
    ids=lambda spec: str(spec.distribution),
)
def test_never_negative(spec: RVConfig) -> None:
    assert draws(spec, n=50_000).min() >= 0.0


def test_same_seed_same_name_same_stream() -> None:
    spec = RVConfig(mean=1.0, distribution="exponential")
    # More than one batch, so that refills are reproducible too.
    n = 2 * BATCH + 17
    assert np.array_equal(draws(spec, seed=5, n=n), draws(spec, seed=5, n=n))


def test_different_seeds_give_different_streams() -> None:
    spec = RVConfig(mean=1.0, distribution="exponential")
    assert not np.array_equal(draws(spec, seed=5, n=100), draws(spec, seed=6, n=100))


def test_different_names_give_independent_streams() -> None:
    spec = RVConfig(mean=1.0, distribution="exponential")
    a = draws(spec, seed=5, name="edge:a", n=100_000)
    b = draws(spec, seed=5, name="edge:b", n=100_000)
    assert not np.array_equal(a[:100], b[:100])
    # Under independence the sample correlation is about N(0, 1/n).
    correlation = np.corrcoef(a, b)[0, 1]
    assert abs(correlation) <= Z / math.sqrt(a.size)
    lagged = np.corrcoef(a[1:], b[:-1])[0, 1]
    assert abs(lagged) <= Z / math.sqrt(a.size)


def test_a_stream_does_not_depend_on_other_streams_being_drawn() -> None:
    streams = RandomStreams(9)
    first = streams.generator("x").random(10)
    streams.generator("y").random(1000)
    assert np.array_equal(first, RandomStreams(9).generator("x").random(10))
