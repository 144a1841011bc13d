"""Several workload classes in one run: what each counts, and servers that pick a request's
endpoint by its class.

Everything here is built only for scenarios with `workload_classes`, so the others
pay nothing for it: their requests carry no class, their collector keeps no tally and
their servers pick endpoints as before.
"""

import bisect
import itertools
from array import array
from collections.abc import Callable, Mapping

import numpy as np
import simpy

from asyncflow_backend.config.constants import Outcome
from asyncflow_backend.metrics.collector import MetricsCollector, Sent, Stamped
from asyncflow_backend.runtime.actors.closed_users import ClosedLoopCollector
from asyncflow_backend.runtime.actors.failures import build_server
from asyncflow_backend.runtime.actors.server import ServerRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.samplers.variates import batched
from asyncflow_backend.schemas.topology import Server


class ClassTally:
    """One class's counts: its requests generated (added to the run's total as well),
    the latencies of its completed ones, and its other ends by outcome."""

    def __init__(self, collector: MetricsCollector) -> None:
        self._collector = collector
        self._generated = 0
        self.latencies = array("d")
        self.ends: dict[Outcome, int] = {}
        """Requests of the class that ended other than completed, by outcome."""

    @property
    def generated(self) -> int:
        """Requests this class created."""
        return self._generated

    @generated.setter
    def generated(self, value: int) -> None:
        self._collector.generated += value - self._generated
        self._generated = value


class ClassCollector(ClosedLoopCollector):
    """The collector of a run with workload classes: every end of a request is also
    tallied for its class (and wakes its user, for a closed class)."""

    def __init__(self, env: simpy.Environment, horizon_s: float, classes: int) -> None:
        super().__init__(env, horizon_s)
        self.tallies = [ClassTally(self) for _ in range(classes)]

    def record_completion(self, request: Stamped) -> None:
        """`request` came back to the client; its class keeps its latency."""
        super().record_completion(request)
        self.tallies[_class_of(request)].latencies.append(self.env._now - request.created_at)

    def record_end(self, request: Sent, outcome: Outcome, place: str, reason: str) -> bool:
        """`request` ended with `outcome`; its class counts it if the run does."""
        counted = super().record_end(request, outcome, place, reason)
        if counted:
            ends = self.tallies[_class_of(request)].ends
            ends[outcome] = ends.get(outcome, 0) + 1
        return counted


def _class_of(request: object) -> int:
    assert isinstance(request, RequestState)
    return request.workload_class


class ClassRouting:
    """The front door of a server some class gives its own endpoint mix: each request
    picks its endpoint with the picker of its class, then is admitted as the server's own
    door says (admission caps, withdrawals...)."""

    def __init__(self, server: ServerRuntime, pickers: list[Callable[[], int]]) -> None:
        self.server = server
        self.pickers = pickers
        """The endpoint picker of each class, by class index."""
        self._admit = server.receive

    def install(self) -> None:
        """Put the routing in front of the server's arrivals."""
        self.server.receive = self.receive

    def receive(self, request: RequestState) -> None:
        """Admit `request`, its endpoint picked by its class's mix."""
        self.server.pick_endpoint = self.pickers[request.workload_class]
        self._admit(request)


def weighted_picker(
    endpoints: list[str], weights: Mapping[str, float], rng: np.random.Generator
) -> Callable[[], int]:
    """Index into `endpoints` drawn with `weights` by name (a name left out is never drawn)."""
    values = [weights.get(name, 0.0) for name in endpoints]
    total = sum(values)
    cumulative = list(itertools.accumulate(v / total for v in values))
    uniform = batched(rng.random)
    last = len(cumulative) - 1
    return lambda: min(bisect.bisect_right(cumulative, uniform()), last)


def build_class_routed_server(spec: Server, ctx: BuildContext) -> ServerRuntime:
    """The server `spec` (built to go down if it can, `failures.build_server`); one that a
    class gives an endpoint mix picks by class, each class drawing from its own stream
    (`endpoint:{server}:{class}`)."""
    mixes = ctx.endpoint_mixes.get(spec.id)
    server = build_server(spec, ctx)
    if mixes is None:
        return server
    names = [endpoint.endpoint_name for endpoint in spec.endpoints]
    own = server.pick_endpoint
    pickers = [
        own
        if mix is None
        else weighted_picker(names, mix, ctx.streams.generator(f"endpoint:{spec.id}:{k}"))
        for k, mix in enumerate(mixes)
    ]
    # Routing by class goes in front of whatever door the server's own features gave it.
    ClassRouting(server, pickers).install()
    return server
