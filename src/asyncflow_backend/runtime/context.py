"""What every node kind is built with."""

from dataclasses import dataclass

import simpy

from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.samplers import RandomStreams


@dataclass(frozen=True)
class BuildContext:
    """The environment, the named random streams and the collector of one run."""

    env: simpy.Environment
    streams: RandomStreams
    collector: MetricsCollector
