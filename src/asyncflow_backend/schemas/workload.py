"""The request generator: how many users are active and how often they call."""

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from asyncflow_backend.config.constants import (
    DEFAULT_USER_SAMPLING_WINDOW_S,
    MAX_ACTIVE_USERS,
    MAX_REQUESTS_PER_MINUTE_PER_USER,
    MAX_USER_SAMPLING_WINDOW_S,
    MIN_USER_SAMPLING_WINDOW_S,
    Distribution,
    TimeoutAction,
)
from asyncflow_backend.schemas.base import Id, Integer, StrictModel
from asyncflow_backend.schemas.random_variables import RVConfig, check_mean_at_most
from asyncflow_backend.schemas.topology import Timeout, check_timeout

USER_DISTRIBUTIONS = {Distribution.POISSON, Distribution.NORMAL, Distribution.DETERMINISTIC}


class RqsGenerator(StrictModel):
    """Users re-drawn every `user_sampling_window` seconds, each calling at a Poisson rate."""

    id: Id
    type: Literal["generator"] = "generator"
    avg_active_users: RVConfig
    avg_request_per_minute_per_user: RVConfig
    user_sampling_window: Integer = Field(
        default=DEFAULT_USER_SAMPLING_WINDOW_S,
        ge=MIN_USER_SAMPLING_WINDOW_S,
        le=MAX_USER_SAMPLING_WINDOW_S,
        description="Seconds between two draws of the number of active users.",
    )
    timeout_s: Timeout | None = Field(
        default=None,
        description="The client's timeout, from the request's creation: a number of seconds "
        "or a random variable drawn per request. A request not answered by then counts as "
        "`timed_out`. None: the client waits for ever.",
    )
    on_timeout: TimeoutAction | None = Field(
        default=None,
        description="With `timeout_s`: `keep_working` (the default) lets the servers finish a "
        "timed-out request (wasted work); `cancel` withdraws it at once wherever it waits "
        "(a queue, an I/O wait, a call), or when its CPU burst ends.",
    )

    @field_validator("timeout_s")
    @classmethod
    def _timeout_bounds(cls, value: float | RVConfig | None) -> float | RVConfig | None:
        check_timeout(value)
        return value

    @model_validator(mode="after")
    def _action_needs_timeout(self) -> Self:
        if self.on_timeout is not None and self.timeout_s is None:
            raise ValueError("on_timeout goes with timeout_s, which the workload lacks")
        return self

    @property
    def cancels_on_timeout(self) -> bool:
        """True if a timed-out request is withdrawn rather than left to finish."""
        return self.timeout_s is not None and self.on_timeout is TimeoutAction.CANCEL

    @field_validator("avg_active_users")
    @classmethod
    def _users_distribution(cls, value: RVConfig) -> RVConfig:
        if value.distribution not in USER_DISTRIBUTIONS:
            allowed = ", ".join(sorted(USER_DISTRIBUTIONS))
            raise ValueError(f"distribution must be one of {allowed}")
        return check_mean_at_most(value, MAX_ACTIVE_USERS)

    @field_validator("avg_request_per_minute_per_user")
    @classmethod
    def _rate_distribution(cls, value: RVConfig) -> RVConfig:
        if value.distribution != Distribution.POISSON:
            raise ValueError("distribution must be poisson (requests form a Poisson process)")
        if value.mean <= 0:
            raise ValueError("mean must be greater than 0")
        return check_mean_at_most(value, MAX_REQUESTS_PER_MINUTE_PER_USER)
