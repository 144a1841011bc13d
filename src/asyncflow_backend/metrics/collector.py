"""What the actors record while the simulation runs: counts and latencies, in flat arrays."""

import math
from array import array

import simpy


class MetricsCollector:
    """Request counts, the latency of every completed request and completions per second.

    Latencies go into an `array('d')`: eight bytes per completed request and
    no object, so a long run costs memory in proportion to its length only
    through this array.
    """

    def __init__(self, env: simpy.Environment, horizon_s: float) -> None:
        self.env = env
        self.generated = 0
        self.latencies = array("d")
        self.completions_per_second = [0] * (math.ceil(horizon_s) + 1)
        self.dropped_at: dict[str, int] = {}
        self.failed_at: dict[str, int] = {}

    def record_completion(self, created_at: float) -> None:
        """A request came back to the client."""
        # SimPy's `now` is a property; its attribute spares a call on every request.
        now = self.env._now
        self.latencies.append(now - created_at)
        self.completions_per_second[int(now)] += 1

    def record_drop(self, where: str) -> None:
        """A request was lost at the edge or node `where`."""
        self.dropped_at[where] = self.dropped_at.get(where, 0) + 1

    def record_failure(self, where: str) -> None:
        """A request failed because a call it made was lost at the edge `where`."""
        self.failed_at[where] = self.failed_at.get(where, 0) + 1

    @property
    def failed(self) -> int:
        """Requests that failed anywhere."""
        return sum(self.failed_at.values())

    @property
    def completed(self) -> int:
        """Requests that came back to the client."""
        return len(self.latencies)

    @property
    def dropped(self) -> int:
        """Requests lost anywhere."""
        return sum(self.dropped_at.values())
