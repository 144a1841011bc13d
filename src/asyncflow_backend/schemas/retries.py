"""Retry policies: how often a client (or a server's call step) sends a request again after
an attempt ends badly, how long it waits first, and how much retrying it may do at all."""

from typing import Self

from pydantic import Field, field_validator, model_validator

from asyncflow_backend.config.constants import (
    MAX_ATTEMPTS,
    MAX_DURATION_S,
    MAX_RETRY_TOKENS,
    Jitter,
    RetryOn,
    TimeoutAction,
)
from asyncflow_backend.schemas.base import Integer, Number, PositiveFinite, StrictModel, readable


class Backoff(StrictModel):
    """Capped exponential backoff with jitter: before retry n (n = 1, 2, ...) the sender
    waits a draw around d = min(`cap_s`, `base_s` x 2^(n-1)) (AWS Architecture Blog,
    "Exponential Backoff And Jitter", 2015)."""

    base_s: PositiveFinite = Field(
        default=0.1, le=MAX_DURATION_S, description="Seconds of d before the first retry."
    )
    cap_s: PositiveFinite = Field(
        default=10.0, le=MAX_DURATION_S, description="Largest d, in seconds."
    )
    jitter: Jitter = Field(
        default=Jitter.FULL,
        description="`full`: uniform in [0, d] (the usual choice); `equal`: uniform in "
        "[d/2, d]; `none`: exactly d.",
    )

    @model_validator(mode="after")
    def _cap_above_base(self) -> Self:
        if self.cap_s < self.base_s:
            raise ValueError(
                f"cap_s ({readable(self.cap_s)} s) must be at least base_s "
                f"({readable(self.base_s)} s)"
            )
        return self


class RetryBudget(StrictModel):
    """A token bucket that lets retries be at most a fraction of first attempts, as
    Finagle's `RetryBudget` and gRPC's retry throttling do: every first attempt puts
    `ratio` tokens in the bucket (which holds at most `max_tokens` and starts full), every
    retry takes one, and a retry that finds less than one token is not sent (the attempt's
    end stands). Over any run, retries <= max_tokens + ratio x first attempts."""

    ratio: Number = Field(
        gt=0, le=1, description="Tokens each first attempt earns: the long-run retry fraction."
    )
    max_tokens: Integer = Field(
        default=10,
        ge=1,
        le=MAX_RETRY_TOKENS,
        description="Most tokens the bucket holds, and holds at the start: a burst of retries.",
    )


class Retry(StrictModel):
    """When and how an attempt that ended badly is sent again. Every attempt is a request on
    the wire; the request ends once, with the end of its last attempt."""

    max_attempts: Integer = Field(
        ge=2,
        le=MAX_ATTEMPTS,
        description="Most attempts, the first included (2: one retry at most).",
    )
    retry_on: list[RetryOn] = Field(
        default_factory=lambda: list(RetryOn),
        min_length=1,
        description="The ends of an attempt that are retried: timed_out, rejected, dropped, "
        "failed (all four when left out).",
    )
    backoff: Backoff = Field(default_factory=Backoff)
    budget: RetryBudget | None = Field(
        default=None, description="A retry budget; none: every allowed retry is sent."
    )

    @field_validator("retry_on")
    @classmethod
    def _no_repeats(cls, value: list[RetryOn]) -> list[RetryOn]:
        if len(set(value)) < len(value):
            raise ValueError("retry_on lists an outcome more than once")
        return value


def attempts_alive(retry: Retry | None, timed: bool, on_timeout: TimeoutAction | None) -> int:
    """Most attempts of one request (or of one sub-request of a call) that may be in the
    system at once, for a sender with this retry policy, a timeout when `timed`, and this
    timeout action: every allowed attempt when a timed-out attempt is retried while the
    servers keep working on it (late work; `keep_working` is the default), else one, since
    each attempt then ends before the next is sent."""
    if (
        retry is None
        or not timed
        or on_timeout is TimeoutAction.CANCEL
        or RetryOn.TIMED_OUT not in retry.retry_on
    ):
        return 1
    return retry.max_attempts
