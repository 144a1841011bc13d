"""The base model every scenario model shares, and the number type most fields use."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A number > 0 that is neither infinite nor NaN: durations, weights, extra latency."""


class StrictModel(BaseModel):
    """Rejects unknown fields, so a typo is an error rather than a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
