"""The users of a closed workload: how many there are over time.

A closed workload has a fixed population: N users, each sending one
request, waiting for its end, thinking, and sending the next. N is a number
or a schedule of whole numbers over time.
"""

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, field_validator

from asyncflow_backend.config.constants import MAX_CLOSED_USERS, MAX_SCHEDULE_POINTS
from asyncflow_backend.schemas.arrival_rate import Seconds, check_points
from asyncflow_backend.schemas.base import Integer, StrictModel

UserCount = Annotated[Integer, Field(ge=0, le=MAX_CLOSED_USERS)]


class UserPoint(StrictModel):
    """How many users there are from one time on."""

    at_s: Seconds = Field(description="Seconds from the start of the run.")
    users: UserCount


class UserSchedule(StrictModel):
    """Piecewise constant users: each point's count holds until the next point."""

    points: list[UserPoint] = Field(min_length=1, max_length=MAX_SCHEDULE_POINTS)

    @field_validator("points")
    @classmethod
    def _points_in_order(cls, points: list[UserPoint]) -> list[UserPoint]:
        check_points([p.at_s for p in points], "the points'")
        if not any(p.users > 0 for p in points):
            raise ValueError("there are 0 users at every point: no request would ever be sent")
        return points

    def steps(self, horizon_s: float) -> list[tuple[float, int]]:
        """(time, users) of each change before the horizon, the first at 0."""
        return [(p.at_s, p.users) for p in self.points if p.at_s < horizon_s]

    def most(self, horizon_s: float) -> int:
        """The largest count before the horizon."""
        return max(users for _, users in self.steps(horizon_s))

    def mean(self, horizon_s: float) -> float:
        """The time-average count over [0, horizon]."""
        steps = self.steps(horizon_s)
        ends = [t for t, _ in steps[1:]] + [horizon_s]
        return sum((end - t) * n for (t, n), end in zip(steps, ends, strict=True)) / horizon_s


def user_steps(users: int | UserSchedule, horizon_s: float) -> list[tuple[float, int]]:
    """(time, users) of each change of the population before the horizon."""
    return [(0.0, users)] if isinstance(users, int) else users.steps(horizon_s)


def _population_kind(value: Any) -> str:
    # Tags named like classes: error paths drop them, so a wrong schedule is not also
    # reported as a wrong integer.
    return "UserSchedule" if isinstance(value, dict | UserSchedule) else "Count"


Population = Annotated[
    Annotated[UserCount, Tag("Count")] | Annotated[UserSchedule, Tag("UserSchedule")],
    Discriminator(_population_kind),
]
"""A closed population: a number of users, or a schedule of them."""
