"""Column types that behave the same on SQLite and Postgres."""

from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import DateTime, Dialect, LargeBinary
from sqlalchemy.types import TypeDecorator

_FLOAT64_LE = np.dtype("<f8")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime.

    Postgres stores `timestamptz`; SQLite has no time zones, so values are
    stored as naive UTC and given back their zone when read. Naive values are
    refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass a timezone-aware one")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Float64Array(TypeDecorator[list[float]]):
    """A list of floats stored as little-endian IEEE doubles: exact, and 8 bytes a value.

    A JSON array would be three times larger and slower to parse for series
    of a million samples.
    """

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return np.asarray(value, dtype=_FLOAT64_LE).tobytes()

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> list[float] | None:
        if value is None:
            return None
        values: list[float] = np.frombuffer(value, dtype=_FLOAT64_LE).tolist()
        return values
