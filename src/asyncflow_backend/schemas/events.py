"""What-if injections: network latency spikes on an edge and server outages."""

from typing import Literal, Self

from pydantic import Field, model_validator

from asyncflow_backend.config.constants import MAX_DURATION_S, MAX_SIMULATION_TIME_S, EventKind
from asyncflow_backend.schemas.base import Id, Number, PositiveFinite, StrictModel

_END_OF = {
    EventKind.SERVER_DOWN: EventKind.SERVER_UP,
    EventKind.NETWORK_SPIKE_START: EventKind.NETWORK_SPIKE_END,
}


class EventStart(StrictModel):
    """Opens the window; a network spike says how many seconds it adds."""

    kind: Literal[EventKind.SERVER_DOWN, EventKind.NETWORK_SPIKE_START]
    t_start: Number = Field(ge=0, le=MAX_SIMULATION_TIME_S, allow_inf_nan=False)
    spike_s: PositiveFinite | None = Field(default=None, le=MAX_DURATION_S)


class EventEnd(StrictModel):
    """Closes the window."""

    kind: Literal[EventKind.SERVER_UP, EventKind.NETWORK_SPIKE_END]
    t_end: Number = Field(gt=0, le=MAX_SIMULATION_TIME_S, allow_inf_nan=False)


class EventInjection(StrictModel):
    """A window of simulated time during which an edge is slower or a server is down."""

    event_id: Id
    target_id: Id
    start: EventStart
    end: EventEnd

    @model_validator(mode="after")
    def _coherent_window(self) -> Self:
        expected_end = _END_OF[self.start.kind]
        if self.end.kind != expected_end:
            raise ValueError(
                f"event '{self.event_id}' starting with '{self.start.kind}' "
                f"must end with '{expected_end}'"
            )
        if self.start.t_start >= self.end.t_end:
            raise ValueError(f"event '{self.event_id}': t_start must be before t_end")
        is_spike = self.start.kind == EventKind.NETWORK_SPIKE_START
        if is_spike and self.start.spike_s is None:
            raise ValueError(f"event '{self.event_id}': a network spike needs spike_s")
        if not is_spike and self.start.spike_s is not None:
            raise ValueError(f"event '{self.event_id}': spike_s only applies to network spikes")
        return self

    @property
    def is_outage(self) -> bool:
        """True for a server outage, False for a network spike."""
        return self.start.kind == EventKind.SERVER_DOWN
