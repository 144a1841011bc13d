"""The workload generator."""

from collections.abc import Generator, Mapping, Sequence

import numpy as np
import simpy

from asyncflow_backend.config.constants import Distribution
from asyncflow_backend.metrics.collector import GeneratedCount
from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.runtime.actors import Covering
from asyncflow_backend.runtime.actors.client import only_out_edge
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.request import RequestFactory, RequestState, request_factory
from asyncflow_backend.runtime.summary import Reading, ResultsBlock
from asyncflow_backend.samplers import Sampler, variate
from asyncflow_backend.schemas.random_variables import RVConfig
from asyncflow_backend.schemas.workload import RqsGenerator


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
        counter: GeneratedCount,
        spent: list[float],
        new_request: RequestFactory = RequestState,
    ) -> None:
        self.env = env
        self.id = generator_id
        self._users = users
        self._rpm = requests_per_minute_per_user
        self._window = window_s
        self._unit_gaps = unit_gaps
        self._counter = counter
        self._new_request = new_request
        self._spent = spent
        self.out_edge: EdgeRuntime | None = None

    @classmethod
    def from_spec(cls, spec: RqsGenerator, ctx: BuildContext) -> "RequestGenerator":
        """The workload `spec`, drawing users and arrival gaps from their own streams."""
        users, rpm = spec.avg_active_users, spec.avg_request_per_minute_per_user
        assert users is not None
        assert rpm is not None
        return cls(
            ctx.env,
            spec.id,
            _users(users, ctx.generator_stream("users", spec.id)),
            rpm.mean,
            spec.user_sampling_window,
            unit_gaps(ctx, spec.id),
            ctx.generated_counter(spec.id),
            ctx.collector.hops.totals,
            request_factory(ctx.class_of.get(spec.id, 0)),
        )

    def connect(self, out_edges: Mapping[str, EdgeRuntime]) -> None:
        """Take the edge to the client. Raises `BuildError` unless there is exactly one."""
        self.out_edge = only_out_edge(self.id, out_edges)

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """The generator samples nothing."""
        return []

    def start(self, covering: Sequence[Covering]) -> None:
        """Start the workload's process (`run`)."""
        self.env.process(self.run())

    def summarise(self, reading: Reading) -> ResultsBlock:
        """Nothing of its own: what it sent is counted by the collector."""
        return ResultsBlock()

    def run(self) -> Generator[simpy.Event, None, None]:
        """The generator's process.

        Yields one timeout per arrival (the gap before it) and one per window
        boundary (the rest of the window once the next arrival would cross it).
        """
        env = self.env
        out_edge = self.out_edge
        assert out_edge is not None
        unit_gaps = self._unit_gaps
        counter, new_request, spent = self._counter, self._new_request, self._spent
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
                counter.generated += 1
                out_edge.send(new_request(env.now, spent))


def unit_gaps(ctx: BuildContext, generator_id: str) -> Sampler:
    """Exponential gaps of mean 1 from the generator's arrival stream: divided by a rate λ,
    the gaps between the arrivals of a Poisson process of rate λ."""
    exponential = RVConfig(mean=1.0, distribution=Distribution.EXPONENTIAL)
    return variate(exponential, ctx.generator_stream("arrivals", generator_id))


def _users(spec: RVConfig, rng: np.random.Generator) -> Sampler:
    """Active users in a window: Poisson, a normal rounded to whole users, or exactly the mean."""
    draw = variate(spec, rng)
    if spec.distribution is Distribution.NORMAL:
        return lambda: float(round(draw()))
    return draw
