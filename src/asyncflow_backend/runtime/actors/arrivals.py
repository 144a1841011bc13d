"""An open workload whose arrival rate follows a schedule: a non-homogeneous Poisson process."""

from collections.abc import Callable, Generator, Mapping, Sequence

import simpy

from asyncflow_backend.metrics.collector import GeneratedCount
from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.runtime.actors import Covering
from asyncflow_backend.runtime.actors.client import only_out_edge
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.actors.generator import unit_gaps
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.request import RequestFactory, RequestState, request_factory
from asyncflow_backend.runtime.summary import Reading, ResultsBlock
from asyncflow_backend.samplers import Sampler
from asyncflow_backend.samplers.variates import batched
from asyncflow_backend.schemas.arrival_rate import Piece
from asyncflow_backend.schemas.workload import RqsGenerator


class ScheduledArrivals:
    """Creates requests at the times of a Poisson process of rate λ(t), by thinning.

    Lewis and Shedler's thinning (*Naval Research Logistics Quarterly* 26(3),
    1979): on each piece [a, b) of the horizon with λ(t) <= M, candidates form
    a homogeneous Poisson process of rate M and one at t is kept with
    probability λ(t) / M. The kept points are exactly a Poisson process of rate
    λ(t); on a flat piece (λ = M throughout) every candidate is kept. A
    candidate past b is discarded and the next piece starts afresh at b, which
    memorylessness makes exact. Rejected candidates schedule no event: only
    kept arrivals cost a timeout.
    """

    def __init__(
        self,
        env: simpy.Environment,
        generator_id: str,
        pieces: list[Piece],
        rate: Callable[[float], float],
        unit_gaps: Sampler,
        uniform: Sampler,
        counter: GeneratedCount,
        spent: list[float],
        new_request: RequestFactory = RequestState,
    ) -> None:
        self.env = env
        self.id = generator_id
        self._pieces = pieces
        self._rate = rate
        self._unit_gaps = unit_gaps
        self._uniform = uniform
        self._counter = counter
        self._new_request = new_request
        self._spent = spent
        self.out_edge: EdgeRuntime | None = None

    @classmethod
    def from_spec(cls, spec: RqsGenerator, ctx: BuildContext) -> "ScheduledArrivals":
        """The schedule of `spec` over the run's horizon, with its own candidate and
        acceptance streams."""
        schedule = spec.arrival_rate
        assert schedule is not None
        return cls(
            ctx.env,
            spec.id,
            schedule.pieces(ctx.horizon_s),
            schedule.rate_function(),
            unit_gaps(ctx, spec.id),
            batched(ctx.generator_stream("thinning", spec.id).random),
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
        """The generator's process: one timeout per kept arrival, none per candidate."""
        env = self.env
        out_edge = self.out_edge
        assert out_edge is not None
        unit_gaps, uniform, rate = self._unit_gaps, self._uniform, self._rate
        counter, new_request, spent = self._counter, self._new_request, self._spent
        for start, end, bound, flat in self._pieces:
            if bound <= 0:
                continue
            t = start
            while True:
                # Absolute candidate times: the clock moves only for kept arrivals.
                t += unit_gaps() / bound
                if t >= end:
                    break
                if not flat and uniform() * bound > rate(t):
                    continue
                yield env.timeout(t - env.now)
                counter.generated += 1
                out_edge.send(new_request(env.now, spent))
