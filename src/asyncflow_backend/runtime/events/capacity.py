"""Capacity schedules: a server's cores changing at set simulated times."""

from collections.abc import Generator, Sequence
from typing import Protocol

import simpy

from asyncflow_backend.schemas.topology import CoreChange


class Resizable(Protocol):
    """A server whose cores can change."""

    def set_cores(self, cores: int) -> None:
        """From now on the server has `cores` cores."""


class CapacitySchedule:
    """Applies one server's `capacity_schedule`: a process that waits for each change's
    `at_s` and sets the server's cores (`set_cores`)."""

    def __init__(self, env: simpy.Environment, server: Resizable) -> None:
        self.env = env
        self.server = server

    def start(self, changes: Sequence[CoreChange]) -> None:
        """Register the process that applies `changes` (in increasing `at_s`)."""
        self.env.process(self._apply(changes))

    def _apply(self, changes: Sequence[CoreChange]) -> Generator[simpy.Event, None, None]:
        """Yields a timeout until each change, then applies it."""
        for change in changes:
            yield self.env.timeout(change.at_s - self.env.now)
            self.server.set_cores(change.cpu_cores)
