"""The base model every scenario model shares, and the number types its fields use.

Numbers are strict: `true`, `"3"` or `"1e3"` are errors, not numbers, so that a
scenario means what it says (a quoted value is usually a mistake). An integer
is a number wherever a number is expected, and a whole number written with a
fraction (`3.0`, as JSON allows for an integer) is an integer.
"""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict


def _whole_float_as_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Number = Annotated[float, Strict()]
"""A JSON number: an int or a float, never a bool or a text."""

Integer = Annotated[int, BeforeValidator(_whole_float_as_int), Strict()]
"""A whole number (3 or 3.0), never a bool, a text or 3.5."""

PositiveFinite = Annotated[Number, Field(gt=0, allow_inf_nan=False)]
"""A number > 0 that is neither infinite nor NaN: durations, weights, extra latency."""

PositiveInteger = Annotated[Integer, Field(gt=0)]
"""A whole number > 0: cores, pool sizes."""


class StrictModel(BaseModel):
    """Rejects unknown fields, so a typo is an error rather than a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
