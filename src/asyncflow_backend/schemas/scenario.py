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
MAX_WORKLOAD_CLASSES = 20
DESCRIPTION_MAX_CHARS = 2000

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_NEWLINES = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


def _trimmed(value: str, max_chars: int) -> str:
    # The limit is on what is kept: spaces around the text do not count.
    value = value.strip()
    if len(value) > max_chars:
        raise ValueError(f"must have at most {max_chars} characters once trimmed, not {len(value)}")
    return value


def _one_line(value: str) -> str:
    value = _trimmed(value, NAME_MAX_CHARS)
    if not value:
        raise ValueError("must not be blank")
    if _CONTROL.search(value):
        raise ValueError("must be one line of text, without control characters")
    return value


def _text(value: str) -> str:
    value = _trimmed(value, DESCRIPTION_MAX_CHARS)
    if _CONTROL_BUT_NEWLINES.search(value):
        raise ValueError("must be text without control characters (line breaks are allowed)")
    return value


ScenarioName = Annotated[str, AfterValidator(_one_line)]
"""A scenario's name: one line of at most `NAME_MAX_CHARS` characters once trimmed."""

ScenarioDescription = Annotated[str, AfterValidator(_text)]
"""What a scenario models: free text of at most `DESCRIPTION_MAX_CHARS` characters, trimmed."""


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
        description="What the run is called in lists, summaries and chart titles: one line, "
        f"at most {NAME_MAX_CHARS} characters once trimmed. Unset: the page and the command line "
        "use the file name.",
    )
    description: ScenarioDescription | None = Field(
        default=None,
        description="What the scenario models, shown on the run's page: at most "
        f"{DESCRIPTION_MAX_CHARS} characters once trimmed.",
    )
    rqs_input: RqsGenerator
    topology_graph: TopologyGraph
    sim_settings: SimulationSettings = SimulationSettings()
    events: list[EventInjection] | None = None
    workload_classes: list[RqsGenerator] | None = Field(
        default=None,
        max_length=MAX_WORKLOAD_CLASSES,
        description="More classes of traffic beside `rqs_input`, each a generator of its own "
        "(an id, an edge to the client, a workload) with its own `endpoint_mix`; results are "
        "broken down by class.",
    )
    seed: Integer | None = Field(
        default=None,
        ge=0,
        lt=2**63,
        description="Same scenario and seed, same results. Unset: a seed is drawn and reported.",
    )

    @property
    def generators(self) -> list[RqsGenerator]:
        """Every workload class: `rqs_input`, then `workload_classes` in order."""
        return [self.rqs_input, *(self.workload_classes or ())]

    @property
    def peak_arrival_rate(self) -> float:
        """Highest plausible arrivals per second, used to bound the size of a run: the sum
        over the workload classes of `class_peak_rate`."""
        return sum(self.class_peak_rate(workload) for workload in self.generators)

    def class_peak_rate(self, workload: RqsGenerator) -> float:
        """Highest plausible arrivals per second of one class.

        Users per window: four standard deviations above the mean user count. A rate
        schedule: its maximum over the horizon. A closed workload: every user at once
        sending as fast as it can, most users / (mean think time + the round trip's
        mean edge latency; edge latencies have means above 0).
        """
        horizon = self.sim_settings.total_simulation_time
        if workload.arrival_rate is not None:
            return workload.arrival_rate.peak(horizon)
        if workload.users is not None and workload.think_time is not None:
            population = workload.users
            most = population if isinstance(population, int) else population.most(horizon)
            return most / (workload.think_time.mean + self.round_trip_floor_s(workload.id))
        users, rpm = workload.avg_active_users, workload.avg_request_per_minute_per_user
        assert users is not None
        assert rpm is not None
        if users.distribution is Distribution.DETERMINISTIC:
            spread = 0.0
        else:
            # Four standard deviations above the mean: Poisson's is sqrt(mean).
            spread = 4.0 * math.sqrt(users.variance or users.mean)
        return (users.mean + spread) * rpm.mean / 60.0

    @property
    def expected_requests(self) -> float:
        """Mean number of requests the generators will create over the horizon: for each
        class, the integral of its arrival rate; for a closed one, the bound
        `class_peak_rate` x horizon."""
        return sum(self.class_expected_requests(workload) for workload in self.generators)

    def class_expected_requests(self, workload: RqsGenerator) -> float:
        """Mean number of requests one class creates over the horizon (see
        `expected_requests`)."""
        horizon = self.sim_settings.total_simulation_time
        if workload.arrival_rate is not None:
            return workload.arrival_rate.integral(horizon)
        if workload.users is not None:
            return self.class_peak_rate(workload) * horizon
        return workload.mean_users_rate() * horizon

    def round_trip_floor_s(self, generator_id: str) -> float:
        """Mean edge latency a request of generator `generator_id` surely crosses: its
        generator's edge, then the fastest edge out of the client and the fastest edge back
        into it."""
        edges = self.topology_graph.edges
        client = self.topology_graph.nodes.client.id
        generators = {workload.id for workload in self.generators}
        into = [e.latency.mean for e in edges if e.source == generator_id]
        out = [e.latency.mean for e in edges if e.source == client]
        back = [e.latency.mean for e in edges if e.target == client and e.source not in generators]
        return sum(min(side, default=0.0) for side in (into, out, back))
