"""Random variables: a mean, a distribution and, where it matters, a variance."""

from typing import Self

from pydantic import Field, model_validator

from asyncflow_backend.config.constants import Distribution
from asyncflow_backend.schemas.base import Number, StrictModel


class RVConfig(StrictModel):
    """A random variable described by its first two moments.

    `variance` is only read by `normal`, `log_normal` and `uniform`; when it is
    omitted for `normal` or `log_normal` it defaults to the mean, as in AsyncFlow.
    """

    mean: Number = Field(ge=0, allow_inf_nan=False, description="Expected value.")
    distribution: Distribution = Distribution.POISSON
    variance: Number | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _default_variance(self) -> Self:
        if self.variance is None and self.distribution in {
            Distribution.NORMAL,
            Distribution.LOG_NORMAL,
        }:
            object.__setattr__(self, "variance", self.mean)
        return self


Duration = float | RVConfig
"""A step duration: a fixed number of seconds or a random variable (an extension)."""
