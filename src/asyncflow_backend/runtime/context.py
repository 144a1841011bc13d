"""What every node kind is built with."""

from dataclasses import dataclass

import simpy

from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.runtime.timeouts import TimeoutSetup
from asyncflow_backend.samplers import RandomStreams


@dataclass(frozen=True)
class BuildContext:
    """The environment, the named random streams, the collector and the timeouts of one run."""

    env: simpy.Environment
    streams: RandomStreams
    collector: MetricsCollector
    timeouts: TimeoutSetup | None = None
    """None when the scenario has no timeout: nothing is built to check for one."""
