"""The transient triggers of a scenario: windows after which a run is asked whether it
recovered (`metrics.recovery`).

A trigger is a window [start, end) of simulated seconds in which the scenario makes the
system worse and after which it makes it whole again:

- an injected event (`events`): its window, whatever its kind (an outage, a network
  spike, a slowdown);
- a dip of a server's `capacity_schedule`: from the change that sets its cores below
  `server_resources.cpu_cores` to the first change that gives them all back (a dip never
  undone is a change of level, not a trigger);
- a load spike of an open workload's `steps`, `ramp` or `trace` schedule: from when the
  rate first rises above its level to the first point back at that level (a rate that
  settles at another level is a change of level; a daily curve never settles, and has
  none).

Triggers whose windows overlap or touch are one trigger (ids joined by `+`), since no run can tell
their effects apart.
"""

from dataclasses import dataclass

from asyncflow_backend.schemas.arrival_rate import PiecewiseRate
from asyncflow_backend.schemas.base import readable
from asyncflow_backend.schemas.scenario import Scenario

CAPACITY_DIP = "capacity_dip"
LOAD_SPIKE = "load_spike"


@dataclass(frozen=True)
class Trigger:
    """A window [start_s, end_s) the system is asked to recover from; `kind` is an event's
    start kind, `capacity_dip` or `load_spike` (kinds joined by `+` when merged)."""

    id: str
    kind: str
    start_s: float
    end_s: float


def scenario_triggers(scenario: Scenario) -> list[Trigger]:
    """Every trigger of `scenario` that starts before its horizon, by start time, overlaps
    merged."""
    horizon = scenario.sim_settings.total_simulation_time
    found = [*_events(scenario), *_capacity_dips(scenario), *_load_spikes(scenario)]
    found = sorted((t for t in found if t.start_s < horizon), key=lambda t: (t.start_s, t.end_s))
    merged: list[Trigger] = []
    for trigger in found:
        if merged and trigger.start_s <= merged[-1].end_s:
            last = merged[-1]
            kinds = (
                last.kind
                if trigger.kind in last.kind.split("+")
                else (f"{last.kind}+{trigger.kind}")
            )
            merged[-1] = Trigger(
                f"{last.id}+{trigger.id}", kinds, last.start_s, max(last.end_s, trigger.end_s)
            )
        else:
            merged.append(trigger)
    return merged


def _events(scenario: Scenario) -> list[Trigger]:
    return [
        Trigger(e.event_id, str(e.start.kind), e.start.t_start, e.end.t_end)
        for e in scenario.events or ()
    ]


def _capacity_dips(scenario: Scenario) -> list[Trigger]:
    dips = []
    for server in scenario.topology_graph.nodes.servers:
        full = server.server_resources.cpu_cores
        start: float | None = None
        for change in server.capacity_schedule:
            if start is None and change.cpu_cores < full:
                start = change.at_s
            elif start is not None and change.cpu_cores >= full:
                dips.append(
                    Trigger(
                        f"{server.id}:capacity@{readable(start)}", CAPACITY_DIP, start, change.at_s
                    )
                )
                start = None
    return dips


def _load_spikes(scenario: Scenario) -> list[Trigger]:
    spikes = []
    for workload in scenario.generators:
        schedule = workload.arrival_rate
        if not isinstance(schedule, PiecewiseRate):
            continue
        points = [(p.at_s, p.rate_per_s) for p in schedule.points]
        level: float | None = None  # the rate the spike must come back to
        start = 0.0
        for i, (at, rate) in enumerate(points):
            if level is not None and rate <= level:
                if rate == level:
                    spikes.append(
                        Trigger(f"{workload.id}:rate@{readable(start)}", LOAD_SPIKE, start, at)
                    )
                level = None  # back at its level, or below it: a change of level
            if level is None and i + 1 < len(points) and points[i + 1][1] > rate:
                # A step rises at the next point; a ramp starts rising here.
                level, start = rate, (at if schedule.linear else points[i + 1][0])
    return spikes
