"""The request generator: which workload the scenario offers and at what rate.

Three workload models, exactly one per generator:

- users re-drawn per window, each calling at a Poisson rate (AsyncFlow's
  `avg_active_users` and `avg_request_per_minute_per_user`);
- an open arrival-rate schedule (`arrival_rate`): a non-homogeneous Poisson
  process;
- a closed population (`users` and `think_time`).
"""

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from asyncflow_backend.config.constants import (
    DEFAULT_USER_SAMPLING_WINDOW_S,
    MAX_ACTIVE_USERS,
    MAX_REQUESTS_PER_MINUTE_PER_USER,
    MAX_USER_SAMPLING_WINDOW_S,
    MAX_WEIGHT,
    MIN_USER_SAMPLING_WINDOW_S,
    Distribution,
    TimeoutAction,
)
from asyncflow_backend.schemas.arrival_rate import ArrivalRate
from asyncflow_backend.schemas.base import EndpointName, Id, Integer, PositiveFinite, StrictModel
from asyncflow_backend.schemas.closed_users import Population
from asyncflow_backend.schemas.random_variables import RVConfig, check_mean_at_most
from asyncflow_backend.schemas.retries import Retry, attempts_alive
from asyncflow_backend.schemas.steps import Timeout, check_timeout

Weight = Annotated[PositiveFinite, Field(le=MAX_WEIGHT)]

USER_DISTRIBUTIONS = {Distribution.POISSON, Distribution.NORMAL, Distribution.DETERMINISTIC}


class WorkloadModel(StrEnum):
    """Which of the three workload models a generator uses."""

    USERS_PER_WINDOW = "users_per_window"
    RATE_SCHEDULE = "rate_schedule"
    CLOSED = "closed"


_MODEL_FIELDS = {
    WorkloadModel.USERS_PER_WINDOW: ("avg_active_users", "avg_request_per_minute_per_user"),
    WorkloadModel.RATE_SCHEDULE: ("arrival_rate",),
    WorkloadModel.CLOSED: ("users", "think_time"),
}


class RqsGenerator(StrictModel):
    """The workload: users re-drawn every `user_sampling_window` seconds each calling at a
    Poisson rate, an arrival-rate schedule, or a closed population of users.

    Raises (through pydantic) a `ValueError` at `rqs_input` unless the fields of exactly
    one model are given, all of them.
    """

    id: Id
    type: Literal["generator"] = "generator"
    avg_active_users: RVConfig | None = None
    avg_request_per_minute_per_user: RVConfig | None = None
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

    retry: Retry | None = Field(
        default=None,
        description="The client's retry policy: an attempt that ends in one of `retry_on` "
        "is sent again from the client after a backoff, up to `max_attempts` attempts. "
        "None: every request has one attempt.",
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

    @property
    def attempts_alive(self) -> int:
        """Most attempts of one request that may be in the system at once (see
        `retries.attempts_alive`)."""
        return attempts_alive(self.retry, self.timeout_s is not None, self.on_timeout)

    arrival_rate: ArrivalRate | None = Field(
        default=None,
        description="Open workload: arrivals form a Poisson process whose rate follows this "
        "schedule.",
    )
    users: Population | None = Field(
        default=None,
        description="Closed workload: this many users (or a schedule of them), each sending a "
        "request, waiting for its end, thinking for `think_time`, and sending the next.",
    )
    think_time: RVConfig | None = Field(
        default=None, description="Closed workload: seconds a user waits between requests."
    )
    endpoint_mix: dict[Id, dict[EndpointName, Weight]] | None = Field(
        default=None,
        description="With workload classes: for each server named, the weights with which "
        "this class's requests pick its endpoints (unnamed endpoints are not picked). "
        "Servers not named pick by their own `probability`.",
    )

    @field_validator("avg_active_users")
    @classmethod
    def _users_distribution(cls, value: RVConfig | None) -> RVConfig | None:
        if value is None:
            return value
        if value.distribution not in USER_DISTRIBUTIONS:
            allowed = ", ".join(sorted(USER_DISTRIBUTIONS))
            raise ValueError(f"distribution must be one of {allowed}")
        return check_mean_at_most(value, MAX_ACTIVE_USERS)

    @field_validator("avg_request_per_minute_per_user")
    @classmethod
    def _rate_distribution(cls, value: RVConfig | None) -> RVConfig | None:
        if value is None:
            return value
        if value.distribution != Distribution.POISSON:
            raise ValueError("distribution must be poisson (requests form a Poisson process)")
        if value.mean <= 0:
            raise ValueError("mean must be greater than 0")
        return check_mean_at_most(value, MAX_REQUESTS_PER_MINUTE_PER_USER)

    @model_validator(mode="before")
    @classmethod
    def _required_fields(cls, data: Any) -> Any:
        # Located like any required field: `rqs_input.avg_active_users: Field required`.
        # With no workload at all, AsyncFlow's two fields are the ones asked for.
        if not isinstance(data, dict):
            return data
        given = [
            m for m, fields in _MODEL_FIELDS.items() if any(data.get(f) is not None for f in fields)
        ]
        if len(given) > 1:
            return data
        model = given[0] if given else WorkloadModel.USERS_PER_WINDOW
        missing = [f for f in _MODEL_FIELDS[model] if data.get(f) is None]
        if missing:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [InitErrorDetails(type="missing", loc=(f,), input=data) for f in missing],
            )
        return data

    @model_validator(mode="after")
    def _one_model(self) -> Self:
        given = {
            model
            for model, fields in _MODEL_FIELDS.items()
            if any(getattr(self, field) is not None for field in fields)
        }
        if len(given) != 1:
            found = " and ".join(
                f"`{'`, `'.join(_MODEL_FIELDS[m])}`" for m in WorkloadModel if m in given
            )
            raise ValueError(
                "give exactly one workload: `avg_active_users` with "
                "`avg_request_per_minute_per_user`, or `arrival_rate`, or `users` with "
                f"`think_time`; found {found or 'none of them'}"
            )
        return self

    @property
    def model(self) -> WorkloadModel:
        """Which workload model this generator uses."""
        if self.arrival_rate is not None:
            return WorkloadModel.RATE_SCHEDULE
        if self.users is not None:
            return WorkloadModel.CLOSED
        return WorkloadModel.USERS_PER_WINDOW

    def mean_users_rate(self) -> float:
        """users x rpm / 60 of the users-per-window model (0 for the others)."""
        if self.avg_active_users is None or self.avg_request_per_minute_per_user is None:
            return 0.0
        return self.avg_active_users.mean * self.avg_request_per_minute_per_user.mean / 60.0
