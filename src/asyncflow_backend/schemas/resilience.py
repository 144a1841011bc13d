"""Admission policies beyond a server's caps: a token-bucket rate limit at a load balancer,
and a circuit breaker on a call step."""

from typing import Self

from pydantic import Field, model_validator

from asyncflow_backend.config.constants import (
    MAX_BREAKER_WINDOW,
    MAX_DURATION_S,
    MAX_RATE_PER_S,
    SlidingWindowType,
)
from asyncflow_backend.schemas.base import Number, PositiveFinite, PositiveInteger, StrictModel


class RateLimit(StrictModel):
    """A token bucket: `rate_per_s` tokens a second flow into a bucket of `burst` tokens,
    which starts full; each request takes one, and a request that finds no whole token is
    rejected at once (reason `rate_limited`). Over a long run the balancer lets through
    min(arrival rate, `rate_per_s`) requests a second."""

    rate_per_s: PositiveFinite = Field(
        le=MAX_RATE_PER_S, description="Tokens added per second: the sustained rate allowed."
    )
    burst: PositiveInteger = Field(
        le=MAX_RATE_PER_S,
        description="Most tokens the bucket holds: the largest burst let through.",
    )


class CircuitBreaker(StrictModel):
    """A circuit breaker on a call step, with resilience4j's parameters and states
    (https://resilience4j.readme.io/docs/circuitbreaker): closed, it records the outcome of
    each call in a sliding window and opens once the window holds at least
    `minimum_number_of_calls` calls of which `failure_rate_threshold` percent or more
    failed; open, it fails every call at once (reason `circuit_open`) for
    `wait_duration_in_open_state` seconds; then half-open, it lets
    `permitted_number_of_calls_in_half_open_state` trial calls through (failing the others
    at once) and, once they have all ended, closes if their failure rate is under the
    threshold, else opens again."""

    failure_rate_threshold: Number = Field(
        default=50.0,
        gt=0,
        le=100,
        description="Percentage of failed calls in the window at which the breaker opens.",
    )
    sliding_window_type: SlidingWindowType = Field(
        default=SlidingWindowType.COUNT_BASED,
        description="`count_based`: the window is the last `sliding_window_size` calls; "
        "`time_based`: the calls that ended in the last `sliding_window_size` seconds.",
    )
    sliding_window_size: PositiveInteger = Field(
        default=100, le=MAX_BREAKER_WINDOW, description="Calls, or seconds, in the window."
    )
    minimum_number_of_calls: PositiveInteger = Field(
        default=100,
        le=MAX_BREAKER_WINDOW,
        description="Calls the window must hold before a failure rate is computed.",
    )
    wait_duration_in_open_state: PositiveFinite = Field(
        default=60.0, le=MAX_DURATION_S, description="Seconds the breaker stays open."
    )
    permitted_number_of_calls_in_half_open_state: PositiveInteger = Field(
        default=10, le=MAX_BREAKER_WINDOW, description="Trial calls let through half-open."
    )

    @model_validator(mode="after")
    def _minimum_fits_a_count_window(self) -> Self:
        if (
            self.sliding_window_type is SlidingWindowType.COUNT_BASED
            and self.minimum_number_of_calls > self.sliding_window_size
        ):
            raise ValueError(
                f"minimum_number_of_calls ({self.minimum_number_of_calls}) cannot exceed a "
                f"count_based sliding_window_size ({self.sliding_window_size}): the breaker "
                "would never open"
            )
        return self
