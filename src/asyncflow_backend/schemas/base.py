"""The base model every scenario model shares, and the number types its fields use.

Numbers are strict: `true`, `"3"` or `"1e3"` are errors, not numbers, so that a
scenario means what it says (a quoted value is usually a mistake). An integer
is a number wherever a number is expected, and a whole number written with a
fraction (`3.0`, as JSON allows for an integer) is an integer.
"""

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from asyncflow_backend.config.constants import (
    ENDPOINT_NAME_PATTERN,
    ID_PATTERN,
    MAX_ENDPOINT_NAME_LENGTH,
    MAX_ID_LENGTH,
)


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


def readable(value: float) -> str:
    """A number as a person reads it: `86400`, `0.002`, `1.5e+308`, never hundreds of digits.

    Whole numbers below 10¹⁵ are written out, others get six significant digits,
    with an exponent when they are very large or very small.
    """
    value = float(value)
    if abs(value) < 1e15 and (value.is_integer() or abs(value) >= 1e5):
        return f"{value:.0f}"
    return f"{value:.6g}"


def shorten(text: str, limit: int = MAX_ID_LENGTH) -> str:
    """`text` cut to `limit` characters with an ellipsis, so a message never echoes a huge value."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _readable_text(pattern: str, allowed: str) -> AfterValidator:
    """Refuses text outside `pattern`, naming the first wrong character, never the whole text."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            wrong = next((c for c in value if not compiled.fullmatch(c)), None)
            found = f"; found {wrong!r}" if wrong is not None and wrong != " " else ""
            raise ValueError(f"use only {allowed}{found}")
        return value

    return AfterValidator(check)


Id = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LENGTH, json_schema_extra={"pattern": ID_PATTERN}),
    _readable_text(ID_PATTERN, "letters, digits and _ . : - (no spaces)"),
]
"""The id of a node, an edge or an event, or a reference to one: at most 64 readable characters."""

EndpointName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ENDPOINT_NAME_LENGTH,
        json_schema_extra={"pattern": ENDPOINT_NAME_PATTERN},
    ),
    _readable_text(
        ENDPOINT_NAME_PATTERN,
        "letters, digits, _ . : - / { } and single spaces between words",
    ),
]
"""An endpoint's name, such as `/orders/{id}`: at most 128 readable characters."""


class StrictModel(BaseModel):
    """Rejects unknown fields, so a typo is an error rather than a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
