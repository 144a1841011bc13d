"""What every node kind is built with."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import simpy

from asyncflow_backend.metrics.collector import GeneratedCount, MetricsCollector
from asyncflow_backend.runtime.events.slowdown import Slowdowns
from asyncflow_backend.runtime.timeouts import TimeoutSetup
from asyncflow_backend.samplers import RandomStreams
from asyncflow_backend.schemas.retries import Retry


@dataclass(frozen=True)
class BuildContext:
    """The environment, the named random streams, the collector, the horizon and the
    timeouts of one run, and the workload classes' wiring."""

    env: simpy.Environment
    streams: RandomStreams
    collector: MetricsCollector
    horizon_s: float
    timeouts: TimeoutSetup | None = None
    """None when the scenario has no timeout: nothing is built to check for one."""
    class_of: Mapping[str, int] = field(default_factory=dict)
    """Workload class index by generator id; empty without `workload_classes`."""
    counters: Mapping[str, GeneratedCount] = field(default_factory=dict)
    """Where each generator of a class counts its requests; the collector when absent."""
    endpoint_mixes: Mapping[str, list[Mapping[str, float] | None]] = field(default_factory=dict)
    """By server id, each class's endpoint weights (None: the server's own mix); only for
    servers some class names in its `endpoint_mix`."""

    def generator_stream(self, purpose: str, generator_id: str) -> np.random.Generator:
        """The random stream of `purpose` for a generator: the plain name for the first
        class (the only one of a scenario without classes, whose numbers stay as they
        were), suffixed by the generator id for the others."""
        first = self.class_of.get(generator_id, 0) == 0
        return self.streams.generator(purpose if first else f"{purpose}:{generator_id}")

    def generated_counter(self, generator_id: str) -> GeneratedCount:
        """Where the generator `generator_id` counts its requests."""
        return self.counters.get(generator_id, self.collector)

    doors: frozenset[str] = frozenset()
    """Servers whose outages close their door (they hold or reject arrivals while down):
    those with `when_down` whose outages no balancer routes around."""
    client_retry: Retry | None = None
    """The workload's retry policy; None: the plain client is built."""
    retries: bool = False
    """True if the client or a call step retries: only then do cache steps remember their
    request's outcome across attempts (`runtime.sticky`)."""
    slowdowns: Slowdowns = field(default_factory=Slowdowns)
    """The servers and edges some slowdown targets: their draws are scaled."""


class BuildError(Exception):
    """A scenario that passed validation could not be wired: a node lacks an edge it needs.

    Validation should have refused such a scenario, so this names an engine defect
    or a validator gap; the message names the node and the missing connection.
    """
