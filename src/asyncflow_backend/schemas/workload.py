"""The request generator: how many users are active and how often they call."""

from typing import Literal

from pydantic import Field, field_validator

from asyncflow_backend.config.constants import (
    DEFAULT_USER_SAMPLING_WINDOW_S,
    MAX_ACTIVE_USERS,
    MAX_REQUESTS_PER_MINUTE_PER_USER,
    MAX_USER_SAMPLING_WINDOW_S,
    MIN_USER_SAMPLING_WINDOW_S,
    Distribution,
)
from asyncflow_backend.schemas.base import Id, Integer, StrictModel
from asyncflow_backend.schemas.random_variables import RVConfig, check_mean_at_most

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
