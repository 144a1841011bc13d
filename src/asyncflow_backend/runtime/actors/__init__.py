"""The SimPy actors: generator, client, load balancer, server and edge.

Requests move by callbacks on SimPy timeouts rather than by one process per
request: each hop costs one scheduled event and no generator frame.
"""

from typing import Protocol

from asyncflow_backend.runtime.request import RequestState


class Node(Protocol):
    """Anything an edge can deliver a request to."""

    id: str

    def receive(self, request: RequestState) -> None:
        """Take `request`, which has just arrived, and decide where it goes next."""
