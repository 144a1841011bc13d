"""A whole scenario: the workload, the topology, the settings and the injected events."""

import math

from pydantic import Field

from asyncflow_backend.config.constants import Distribution
from asyncflow_backend.schemas.base import Integer, StrictModel
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.settings import SimulationSettings
from asyncflow_backend.schemas.topology import TopologyGraph
from asyncflow_backend.schemas.workload import RqsGenerator


class Scenario(StrictModel):
    """The input of one simulation run.

    Field names are AsyncFlow's so that its files run unchanged. Structural
    checks live on the models; checks that span sections (ids, routes, event
    windows) live in `asyncflow_backend.schemas.validation`, which
    `parse_scenario` applies.
    """

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
