"""Time series sampled at a fixed period."""

from array import array
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import simpy

from asyncflow_backend.config.constants import SampledMetric
from asyncflow_backend.metrics.catalogue import MetricDefinition

G = TypeVar("G")


@dataclass
class Probe:
    """One series: a metric of one component, read by `read` at every tick."""

    metric: SampledMetric
    component_id: str
    read: Callable[[], float]
    values: "array[float]" = field(default_factory=lambda: array("d"))


class TimeSeriesSampler:
    """Reads every probe at t = 0, p, 2p, ... while the run lasts."""

    def __init__(self, env: simpy.Environment, period_s: float, probes: list[Probe]) -> None:
        self.env = env
        self.period_s = period_s
        self.probes = probes

    def run(self) -> Generator[simpy.Event, None, None]:
        """The sampler's process: yields a timeout of one period between two readings.

        Tick times come from the tick count, not a running sum, so they do not drift.
        """
        env = self.env
        readers = [(probe.read, probe.values.append) for probe in self.probes]
        tick = 0
        while True:
            for read, append in readers:
                append(read())
            tick += 1
            yield env.timeout(tick * self.period_s - env.now)


def probes_for(
    definitions: Iterable[MetricDefinition[G]],
    component: G,
    component_id: str,
    enabled: frozenset[str],
) -> list[Probe]:
    """A probe for each of `definitions` that is enabled, reading `component`."""
    return [
        Probe(d.metric, component_id, partial(d.read, component))
        for d in definitions
        if d.metric in enabled
    ]
