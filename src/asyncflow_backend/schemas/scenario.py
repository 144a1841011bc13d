"""A whole scenario: the workload, the topology, the settings and the injected events."""

import math
import re
from pathlib import PurePath
from typing import Annotated

from pydantic import AfterValidator, Field

from asyncflow_backend.config.constants import Distribution
from asyncflow_backend.schemas.base import Integer, StrictModel
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.settings import SimulationSettings
from asyncflow_backend.schemas.topology import TopologyGraph
from asyncflow_backend.schemas.workload import RqsGenerator

NAME_MAX_CHARS = 120
DESCRIPTION_MAX_CHARS = 2000

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_NEWLINES = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


def _one_line(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    if _CONTROL.search(value):
        raise ValueError("must be one line of text, without control characters")
    return value


def _text(value: str) -> str:
    value = value.strip()
    if _CONTROL_BUT_NEWLINES.search(value):
        raise ValueError("must be text without control characters (line breaks are allowed)")
    return value


ScenarioName = Annotated[
    str,
    Field(max_length=NAME_MAX_CHARS),
    AfterValidator(_one_line),
]
"""A scenario's name: one line of at most `NAME_MAX_CHARS` characters, trimmed."""

ScenarioDescription = Annotated[
    str,
    Field(max_length=DESCRIPTION_MAX_CHARS),
    AfterValidator(_text),
]
"""What a scenario models: free text of at most `DESCRIPTION_MAX_CHARS` characters."""


def name_from_file(file_name: str) -> str | None:
    """The default name of a scenario read from `file_name`: its stem (`ram_pressure` for
    `example/ram_pressure.yml`), control characters dropped and cut to `NAME_MAX_CHARS`;
    None when nothing printable is left."""
    stem = _CONTROL.sub("", PurePath(file_name).stem).strip()
    return stem[:NAME_MAX_CHARS].strip() or None


class Scenario(StrictModel):
    """The input of one simulation run.

    Field names are AsyncFlow's so that its files run unchanged. Structural
    checks live on the models; checks that span sections (ids, routes, event
    windows) live in `asyncflow_backend.schemas.validation`, which
    `parse_scenario` applies.
    """

    name: ScenarioName | None = Field(
        default=None,
        description="What the run is called in lists, summaries and chart titles. Unset: the "
        "page and the command line use the file name.",
    )
    description: ScenarioDescription | None = Field(
        default=None, description="What the scenario models, shown on the run's page."
    )
    rqs_input: RqsGenerator
    topology_graph: TopologyGraph
    sim_settings: SimulationSettings = SimulationSettings()
    events: list[EventInjection] | None = None
    seed: Integer | None = Field(
        default=None,
        ge=0,
        lt=2**63,
        description="Same scenario and seed, same results. Unset: a seed is drawn and reported.",
    )

    @property
    def peak_arrival_rate(self) -> float:
        """Highest plausible arrivals per second, used to bound the size of a run."""
        users = self.rqs_input.avg_active_users
        if users.distribution is Distribution.DETERMINISTIC:
            spread = 0.0
        else:
            # Four standard deviations above the mean: Poisson's is sqrt(mean).
            spread = 4.0 * math.sqrt(users.variance or users.mean)
        rpm = self.rqs_input.avg_request_per_minute_per_user.mean
        return (users.mean + spread) * rpm / 60.0

    @property
    def expected_requests(self) -> float:
        """Mean number of requests the generator will create over the horizon."""
        rate = (
            self.rqs_input.avg_active_users.mean
            * self.rqs_input.avg_request_per_minute_per_user.mean
            / 60.0
        )
        return rate * self.sim_settings.total_simulation_time
