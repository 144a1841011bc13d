"""The workload generator."""

from collections.abc import Generator

import simpy

from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.samplers import Sampler


class RequestGenerator:
    """Creates requests: every window re-draws the active users U, then arrivals are
    Poisson with rate U * rpm / 60 until the window ends.

    Window boundaries are computed from the window index, never by adding up
    gaps, so the simulated clock and the sampler's clock cannot drift apart.
    An arrival that would fall past the boundary is discarded: by memorylessness
    the process restarted at the boundary with the new rate is exact.
    """

    def __init__(
        self,
        env: simpy.Environment,
        generator_id: str,
        users: Sampler,
        requests_per_minute_per_user: float,
        window_s: float,
        unit_gaps: Sampler,
        collector: MetricsCollector,
    ) -> None:
        self.env = env
        self.id = generator_id
        self._users = users
        self._rpm = requests_per_minute_per_user
        self._window = window_s
        self._unit_gaps = unit_gaps
        self._collector = collector
        self.out_edge: EdgeRuntime | None = None

    def run(self) -> Generator[simpy.Event, None, None]:
        """The generator's process.

        Yields one timeout per arrival (the gap before it) and one per window
        boundary (the rest of the window once the next arrival would cross it).
        """
        env = self.env
        out_edge = self.out_edge
        assert out_edge is not None
        unit_gaps = self._unit_gaps
        collector = self._collector
        window = 0
        while True:
            window += 1
            window_end = window * self._window
            rate = self._users() * self._rpm / 60.0
            if rate <= 0:
                yield env.timeout(window_end - env.now)
                continue
            while True:
                gap = unit_gaps() / rate
                if env.now + gap >= window_end:
                    yield env.timeout(window_end - env.now)
                    break
                yield env.timeout(gap)
                collector.generated += 1
                out_edge.send(RequestState(env.now))
