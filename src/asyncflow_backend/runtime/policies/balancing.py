"""Balancing policies: how a load balancer picks the server for the next request.

Each policy is a small object with one hook, `choose(up)`, that the balancer calls with
the servers that are up, in their listed order (never empty). Whether a policy reads the
servers' load is declared with its name (`LoadBalancerAlgorithm.reads_load`), where the
scenario checks can see it too; `tests/unit/test_balancing_policies.py` holds each policy
to its declaration. Adding a policy: a member of `LoadBalancerAlgorithm`, a class here and
its row in `POLICIES`.
"""

from collections.abc import Sequence
from typing import Protocol, TypeVar

from asyncflow_backend.config.constants import LoadBalancerAlgorithm
from asyncflow_backend.samplers import Sampler


class Candidate(Protocol):
    """A server behind the balancer as a policy sees it."""

    @property
    def server_id(self) -> str:
        """The server's id."""

    @property
    def weight(self) -> float:
        """Its relative share (`weights`; 1 when left out)."""

    @property
    def open_connections(self) -> int:
        """Requests sent to it that have not left it yet: on the wire or inside."""


C = TypeVar("C", bound=Candidate)


class BalancingPolicy(Protocol):
    """Picks one of the servers that are up."""

    def choose(self, up: Sequence[C]) -> C:
        """The server for the next request, out of `up` (the servers that are up)."""


class RoundRobin:
    """Walks the servers in the order they are listed."""

    def __init__(self, uniform: Sampler) -> None:
        self._next = 0

    def choose(self, up: Sequence[C]) -> C:
        """The server after the last one picked."""
        index = self._next % len(up)
        self._next = index + 1
        return up[index]


class LeastConnection:
    """Picks the server with the fewest open connections, counting a request from the
    moment it is sent until the server lets it go (as a balancer holding a connection
    until the response); ties go to the tied servers in turn."""

    def __init__(self, uniform: Sampler) -> None:
        self._next = 0

    def choose(self, up: Sequence[C]) -> C:
        """The least-loaded server, scanning from the one after the last pick."""
        count = len(up)
        # Start the scan after the last pick, so ties rotate instead of always going
        # to the first listed server.
        start = self._next % count
        best = up[start]
        fewest = best.open_connections
        for k in range(1, count):
            candidate = up[(start + k) % count]
            connections = candidate.open_connections
            if connections < fewest:
                best, fewest = candidate, connections
        self._next = up.index(best) + 1
        return best


class Random:
    """Picks a server uniformly."""

    def __init__(self, uniform: Sampler) -> None:
        self._uniform = uniform

    def choose(self, up: Sequence[C]) -> C:
        """A server drawn uniformly (one uniform draw)."""
        return up[min(int(self._uniform() * len(up)), len(up) - 1)]


class PowerOfTwoChoices:
    """Draws two distinct servers at random and sends to the one with fewer open
    connections (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing",
    2001); a tie goes to the first drawn."""

    def __init__(self, uniform: Sampler) -> None:
        self._uniform = uniform

    def choose(self, up: Sequence[C]) -> C:
        """The less loaded of two servers drawn without replacement (two uniform draws;
        none while a single server is up)."""
        count = len(up)
        if count == 1:
            return up[0]
        first = min(int(self._uniform() * count), count - 1)
        second = min(int(self._uniform() * (count - 1)), count - 2)
        if second >= first:
            second += 1
        a, b = up[first], up[second]
        return b if b.open_connections < a.open_connections else a


class WeightedRoundRobin:
    """nginx's smooth weighted round robin: over any run of sum(weights) picks each server
    gets its weight's share, spread out rather than in bursts."""

    def __init__(self, uniform: Sampler) -> None:
        self._credit: dict[str, float] = {}

    def choose(self, up: Sequence[C]) -> C:
        """Every server up earns its weight in credit; the richest is picked and pays the
        total."""
        credit = self._credit
        total = 0.0
        best: C | None = None
        for backend in up:
            credit[backend.server_id] = credit.get(backend.server_id, 0.0) + backend.weight
            total += backend.weight
            if best is None or credit[backend.server_id] > credit[best.server_id]:
                best = backend
        assert best is not None
        credit[best.server_id] -= total
        return best


class PolicyFactory(Protocol):
    """A policy class: built with the balancer's stream of uniform draws."""

    def __call__(self, uniform: Sampler) -> BalancingPolicy: ...


POLICIES: dict[LoadBalancerAlgorithm, PolicyFactory] = {
    LoadBalancerAlgorithm.ROUND_ROBIN: RoundRobin,
    LoadBalancerAlgorithm.LEAST_CONNECTION: LeastConnection,
    LoadBalancerAlgorithm.RANDOM: Random,
    LoadBalancerAlgorithm.WEIGHTED_ROUND_ROBIN: WeightedRoundRobin,
    LoadBalancerAlgorithm.POWER_OF_TWO_CHOICES: PowerOfTwoChoices,
}
"""The policy of each `algorithms` value of a load balancer."""


def policy_for(algorithm: LoadBalancerAlgorithm, uniform: Sampler) -> BalancingPolicy:
    """A fresh `algorithm` policy drawing from `uniform`."""
    return POLICIES[algorithm](uniform)
