"""Random variables for the builder, written as the scenario language writes them.

The helpers return plain mappings rather than validated models, so that a bad
value (a negative mean, say) is reported by `ScenarioBuilder.build` with its
path in the scenario, like every other problem.
"""

from typing import Any, NotRequired, TypedDict

from asyncflow_backend.config.constants import Distribution
from asyncflow_backend.schemas.random_variables import RVConfig


class RandomVariable(TypedDict):
    """A random variable as it appears in a scenario document."""

    mean: float
    distribution: NotRequired[str]
    variance: NotRequired[float]


def exponential(mean: float) -> RandomVariable:
    """Exponentially distributed with this mean: network latencies, M/M/c service times."""
    return {"mean": mean, "distribution": Distribution.EXPONENTIAL.value}


def deterministic(value: float) -> RandomVariable:
    """Always exactly `value` (an extension): e.g. a fixed number of active users."""
    return {"mean": value, "distribution": Distribution.DETERMINISTIC.value}


def poisson(mean: float) -> RandomVariable:
    """Poisson distributed with this mean: AsyncFlow's default for user counts."""
    return {"mean": mean, "distribution": Distribution.POISSON.value}


def normal(mean: float, variance: float | None = None) -> RandomVariable:
    """Normal, clipped at zero; the variance defaults to the mean, as in AsyncFlow."""
    return _with_variance(mean, Distribution.NORMAL, variance)


def log_normal(mean: float, variance: float | None = None) -> RandomVariable:
    """Log-normal with this mean and variance (the variance defaults to the mean)."""
    return _with_variance(mean, Distribution.LOG_NORMAL, variance)


def uniform(mean: float, variance: float | None = None) -> RandomVariable:
    """Uniform around the mean; without a variance, uniform on [0, 2 x mean]."""
    return _with_variance(mean, Distribution.UNIFORM, variance)


def _with_variance(
    mean: float, distribution: Distribution, variance: float | None
) -> RandomVariable:
    variable: RandomVariable = {"mean": mean, "distribution": distribution.value}
    if variance is not None:
        variable["variance"] = variance
    return variable


Amount = float | RandomVariable | RVConfig
"""What the builder takes wherever the language takes a number or a random variable."""


def as_document(value: Amount) -> Any:
    """The value as it would be written in a scenario file."""
    if isinstance(value, RVConfig):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, dict):
        return dict(value)
    return value
