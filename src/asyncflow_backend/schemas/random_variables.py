"""Random variables: a mean, a distribution and, where it matters, a variance."""

import math
from typing import Self

from pydantic import Field, model_validator

from asyncflow_backend.config.constants import (
    MAX_RV_MEAN,
    MAX_RV_VARIANCE,
    Distribution,
)
from asyncflow_backend.schemas.base import Number, StrictModel, readable


class RVConfig(StrictModel):
    """A random variable described by its first two moments.

    `variance` is only read by `normal`, `log_normal` and `uniform`; when it is
    omitted for `normal` or `log_normal` it defaults to the mean, as in AsyncFlow.
    Both are bounded (`MAX_RV_MEAN`, `MAX_RV_VARIANCE`) and a log-normal must have
    finite parameters, so that every draw is a finite number.
    """

    mean: Number = Field(ge=0, le=MAX_RV_MEAN, allow_inf_nan=False, description="Expected value.")
    distribution: Distribution = Distribution.POISSON
    variance: Number | None = Field(default=None, ge=0, le=MAX_RV_VARIANCE, allow_inf_nan=False)

    @model_validator(mode="after")
    def _default_variance(self) -> Self:
        if self.variance is None and self.distribution in {
            Distribution.NORMAL,
            Distribution.LOG_NORMAL,
        }:
            object.__setattr__(self, "variance", self.mean)
        if self.distribution is Distribution.LOG_NORMAL and self.mean > 0:
            mu, sigma = self.log_normal_parameters()
            if not (math.isfinite(mu) and math.isfinite(sigma)):
                raise ValueError(
                    f"a log_normal with mean {readable(self.mean)} and variance "
                    f"{readable(self.variance or 0.0)} cannot be drawn: variance / mean² "
                    "overflows; use a larger mean or a smaller variance"
                )
        return self

    def log_normal_parameters(self) -> tuple[float, float]:
        """(mu, sigma) of the normal whose exponential has mean m and variance v.

        sigma² = ln(1 + v / m²) and mu = ln m - sigma² / 2 (the log-normal's moments,
        e.g. Johnson, Kotz and Balakrishnan, *Continuous Univariate
        Distributions*, ch. 14). v / m² is computed as v / m / m, so that a tiny
        mean does not underflow m² to zero. Needs m > 0.
        """
        ratio = (self.variance or 0.0) / self.mean / self.mean
        sigma2 = math.log1p(ratio)
        return math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2)


def check_mean_at_most(variable: RVConfig, limit: float, unit: str = "") -> RVConfig:
    """`variable` if its mean is at most `limit`; raises ValueError naming both otherwise."""
    if variable.mean > limit:
        raise ValueError(
            f"the mean must be at most {readable(limit)}{unit}, got {readable(variable.mean)}"
        )
    return variable


Duration = float | RVConfig
"""A step duration: a fixed number of seconds or a random variable (an extension)."""
