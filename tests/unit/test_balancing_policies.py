"""Every balancing policy is registered and keeps its declaration of whether it reads load
(the scenario checks trust `LoadBalancerAlgorithm.reads_load` to tell how a balancer
shares the requests out)."""

from dataclasses import dataclass

import numpy as np
import pytest

from asyncflow_backend.config.constants import LoadBalancerAlgorithm
from asyncflow_backend.runtime.policies.balancing import POLICIES, policy_for
from asyncflow_backend.samplers.variates import batched


@dataclass
class Server:
    server_id: str
    open_connections: int
    weight: float = 1.0


def picks(algorithm: LoadBalancerAlgorithm, loads: list[int], count: int = 60) -> list[str]:
    """The servers `algorithm` picks `count` times in a row over servers holding `loads`
    open connections, drawing from a fixed stream."""
    policy = policy_for(algorithm, batched(np.random.default_rng(3).random))
    up = [Server(f"srv-{k}", load) for k, load in enumerate(loads)]
    return [policy.choose(up).server_id for _ in range(count)]


def test_every_algorithm_has_a_policy() -> None:
    assert set(POLICIES) == set(LoadBalancerAlgorithm)


@pytest.mark.parametrize("algorithm", list(LoadBalancerAlgorithm))
def test_a_policy_reads_load_exactly_when_it_says_so(algorithm: LoadBalancerAlgorithm) -> None:
    idle = picks(algorithm, [0, 0, 0])
    uneven = picks(algorithm, [9, 0, 4])
    assert (idle != uneven) is algorithm.reads_load
    if algorithm.reads_load:
        # Load-reading policies send the most to the idle server.
        assert max(set(uneven), key=uneven.count) == "srv-1"


def test_the_policies_keep_their_shares() -> None:
    """Round robin and its weighted form in exact proportion; the least connection rule
    rotates ties."""
    assert (
        picks(LoadBalancerAlgorithm.ROUND_ROBIN, [0, 0, 0], 6)
        == [
            "srv-0",
            "srv-1",
            "srv-2",
        ]
        * 2
    )
    assert picks(LoadBalancerAlgorithm.LEAST_CONNECTION, [0, 0], 4) == ["srv-0", "srv-1"] * 2
    policy = policy_for(LoadBalancerAlgorithm.WEIGHTED_ROUND_ROBIN, lambda: 0.0)
    up = [Server("a", 0, 3.0), Server("b", 0, 1.0)]
    # nginx's smooth weighted round robin: a a b a over each run of 4.
    assert [policy.choose(up).server_id for _ in range(8)] == list("aabaaaba")
