"""A closed workload: a population of users, each with one request out at a time."""

from array import array
from collections.abc import Generator, Mapping, Sequence

import simpy

from asyncflow_backend.config.constants import Outcome
from asyncflow_backend.metrics import analyzer
from asyncflow_backend.metrics.collector import GeneratedCount, MetricsCollector, Sent, Stamped
from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.runtime.actors import Covering
from asyncflow_backend.runtime.actors.client import only_out_edge
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.actors.retrying_client import Attempt
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.runtime.summary import Reading, ResultsBlock
from asyncflow_backend.samplers import Sampler, variate
from asyncflow_backend.schemas.closed_users import Population, user_steps
from asyncflow_backend.schemas.workload import RqsGenerator


class UserRequest(RequestState):
    """A request of a closed user: it carries the event its user waits on."""

    __slots__ = ("ended", "workload_class")

    def __init__(
        self, created_at: float, spent: list[float], ended: simpy.Event, workload_class: int
    ) -> None:
        super().__init__(created_at, spent)
        self.ended = ended
        self.workload_class = workload_class


class ClosedLoopCollector(MetricsCollector):
    """The collector of a closed workload: every end of a request (completed, or any other
    outcome: dropped, failed, rejected, timed out) also wakes the user waiting for it.
    Only closed workloads use this class, so open ones pay nothing for it."""

    def record_completion(self, request: Stamped) -> None:
        """`request` came back to the client; its user carries on."""
        super().record_completion(request)
        _end(request)

    def record_end(self, request: Sent, outcome: Outcome, place: str, reason: str) -> bool:
        """`request` ended with `outcome`; its user carries on (once: a request that timed
        out and then ends again elsewhere woke its user at the timeout), unless the end is
        an attempt's that the client retries: the user waits for the request's last."""
        counted = super().record_end(request, outcome, place, reason)
        if counted:  # not an attempt the client retries, nor a request timed out before
            _end(request)
        return counted


def _end(request: object) -> None:
    # The user waits for the request it sent, whichever attempt of it ends.
    if isinstance(request, Attempt):
        request = request.first
    # Beside workload classes, a request may come from an open class: nobody waits for it.
    if isinstance(request, UserRequest) and not request.ended.triggered:
        request.ended.succeed(request)


class ClosedUsers:
    """N users, N a number or a step schedule. Each user thinks for a draw of the think
    time, sends a request, waits for its end (`_wait`), and repeats.

    When N grows, new users start (thinking first, so that they do not all send at
    once); when it shrinks, the users numbered N and above leave once their request
    has ended and they have thought, and come back if N grows again meanwhile.
    """

    def __init__(
        self,
        env: simpy.Environment,
        generator_id: str,
        steps: list[tuple[float, int]],
        think_time: Sampler,
        counter: GeneratedCount,
        spent: list[float],
        workload_class: int = 0,
    ) -> None:
        self.env = env
        self.id = generator_id
        self._steps = steps
        self._think_time = think_time
        self._counter = counter
        self._spent = spent
        self._class = workload_class
        self._running: list[bool] = []
        self.population = 0
        """N now: the users numbered below it are in the loop."""
        self.think_times = array("d")
        """Every think time drawn, in seconds."""
        self.out_edge: EdgeRuntime | None = None
        self.users: Population = 0
        """The population as the scenario gives it, a number or a step schedule (set by
        `from_spec`): what the results report as N."""

    @classmethod
    def from_spec(cls, spec: RqsGenerator, ctx: BuildContext) -> "ClosedUsers":
        """The users of `spec`, drawing think times from their own stream."""
        assert spec.users is not None
        assert spec.think_time is not None
        users = cls(
            ctx.env,
            spec.id,
            user_steps(spec.users, ctx.horizon_s),
            variate(spec.think_time, ctx.generator_stream("think_time", spec.id)),
            ctx.generated_counter(spec.id),
            ctx.collector.hops.totals,
            ctx.class_of.get(spec.id, 0),
        )
        users.users = spec.users
        return users

    def connect(self, out_edges: Mapping[str, EdgeRuntime]) -> None:
        """Take the edge to the client. Raises `BuildError` unless there is exactly one."""
        self.out_edge = only_out_edge(self.id, out_edges)

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """The users sample nothing."""
        return []

    def start(self, covering: Sequence[Covering]) -> None:
        """Start the population's process (`run`)."""
        self.env.process(self.run())

    def summarise(self, reading: Reading) -> ResultsBlock:
        """The closed-loop reading of the workload: N, Z, R and X, and the X the interactive
        law predicts from them."""
        horizon = reading.horizon_s
        population = self.users
        if isinstance(population, int):
            mean, most = float(population), population
        else:
            mean, most = population.mean(horizon), population.most(horizon)
        stats = analyzer.closed_loop(
            mean, most, self.think_times, reading.latencies(self.id), horizon
        )
        return ResultsBlock(closed={self.id: stats})

    def run(self) -> Generator[simpy.Event, None, None]:
        """The population's process: one timeout per change of N, starting users as it grows."""
        env = self.env
        for at, users in self._steps:
            if at > env.now:
                yield env.timeout(at - env.now)
            self.population = users
            if users > len(self._running):
                self._running += [False] * (users - len(self._running))
            for index in range(users):
                if not self._running[index]:
                    self._running[index] = True
                    env.process(self._user(index))

    def _user(self, index: int) -> Generator[simpy.Event, None, None]:
        env = self.env
        out_edge = self.out_edge
        assert out_edge is not None
        counter = self._counter
        think_time = self._think_time
        workload_class = self._class
        while index < self.population:
            think = think_time()
            self.think_times.append(think)
            yield env.timeout(think)
            if index >= self.population:
                break
            request = UserRequest(env.now, self._spent, env.event(), workload_class)
            counter.generated += 1
            out_edge.send(request)
            yield self._wait(request)
        self._running[index] = False

    def _wait(self, request: UserRequest) -> simpy.Event:
        """What a user waits on after sending `request`: its end, whichever comes first of
        its answer and any other outcome, its client timeout (`timeout_s`) included, which
        the collector reports like any other end."""
        return request.ended
