"""What-if injections: network latency spikes on an edge, server outages, and slowdowns of
a server's step times or of an edge's latency."""

from typing import Literal, Self

from pydantic import Field, model_validator

from asyncflow_backend.config.constants import (
    MAX_DURATION_S,
    MAX_SIMULATION_TIME_S,
    MAX_SLOWDOWN_FACTOR,
    EventKind,
    SlowdownScope,
)
from asyncflow_backend.schemas.base import Id, Number, PositiveFinite, StrictModel

_END_OF = {
    EventKind.SERVER_DOWN: EventKind.SERVER_UP,
    EventKind.NETWORK_SPIKE_START: EventKind.NETWORK_SPIKE_END,
    EventKind.SERVER_SLOWDOWN_START: EventKind.SERVER_SLOWDOWN_END,
    EventKind.EDGE_SLOWDOWN_START: EventKind.EDGE_SLOWDOWN_END,
}

_WHAT = {
    EventKind.SERVER_DOWN: "a server outage",
    EventKind.NETWORK_SPIKE_START: "a network spike",
    EventKind.SERVER_SLOWDOWN_START: "a server slowdown",
    EventKind.EDGE_SLOWDOWN_START: "an edge slowdown",
}

_FIELDS: dict[str, tuple[frozenset[EventKind], bool, str]] = {
    "spike_s": (frozenset({EventKind.NETWORK_SPIKE_START}), True, "network spikes"),
    "factor": (
        frozenset({EventKind.SERVER_SLOWDOWN_START, EventKind.EDGE_SLOWDOWN_START}),
        True,
        "slowdowns",
    ),
    "applies_to": (frozenset({EventKind.SERVER_SLOWDOWN_START}), False, "server slowdowns"),
}
"""Each optional field of a start mark: the kinds that take it, whether they need it, and
how the error names those kinds."""

SLOWDOWNS = frozenset({EventKind.SERVER_SLOWDOWN_START, EventKind.EDGE_SLOWDOWN_START})
SERVER_EVENTS = frozenset({EventKind.SERVER_DOWN, EventKind.SERVER_SLOWDOWN_START})
"""Start kinds whose target is a server; the others target an edge."""


class EventStart(StrictModel):
    """Opens the window; a network spike says how many seconds it adds, a slowdown the
    factor it multiplies by (and a server slowdown which step times)."""

    kind: Literal[
        EventKind.SERVER_DOWN,
        EventKind.NETWORK_SPIKE_START,
        EventKind.SERVER_SLOWDOWN_START,
        EventKind.EDGE_SLOWDOWN_START,
    ]
    t_start: Number = Field(ge=0, le=MAX_SIMULATION_TIME_S, allow_inf_nan=False)
    spike_s: PositiveFinite | None = Field(default=None, le=MAX_DURATION_S)
    factor: PositiveFinite | None = Field(default=None, le=MAX_SLOWDOWN_FACTOR)
    """Slowdowns: what a step time or latency drawn in the window is multiplied by
    (below 1, a speed-up)."""
    applies_to: SlowdownScope | None = None
    """Server slowdowns: CPU steps, I/O steps or both (None: both)."""


class EventEnd(StrictModel):
    """Closes the window."""

    kind: Literal[
        EventKind.SERVER_UP,
        EventKind.NETWORK_SPIKE_END,
        EventKind.SERVER_SLOWDOWN_END,
        EventKind.EDGE_SLOWDOWN_END,
    ]
    t_end: Number = Field(gt=0, le=MAX_SIMULATION_TIME_S, allow_inf_nan=False)


class EventInjection(StrictModel):
    """A window of simulated time during which an edge is slower or a server is down or
    slower."""

    event_id: Id
    target_id: Id
    start: EventStart
    end: EventEnd

    @model_validator(mode="after")
    def _coherent_window(self) -> Self:
        kind = self.start.kind
        expected_end = _END_OF[kind]
        if self.end.kind != expected_end:
            raise ValueError(
                f"event '{self.event_id}' starting with '{kind}' must end with '{expected_end}'"
            )
        if self.start.t_start >= self.end.t_end:
            raise ValueError(f"event '{self.event_id}': t_start must be before t_end")
        for name, (kinds, needed, whose) in _FIELDS.items():
            given = getattr(self.start, name) is not None
            if kind in kinds and needed and not given:
                raise ValueError(f"event '{self.event_id}': {_WHAT[kind]} needs {name}")
            if kind not in kinds and given:
                raise ValueError(f"event '{self.event_id}': {name} only applies to {whose}")
        return self

    @property
    def is_outage(self) -> bool:
        """True for a server outage."""
        return self.start.kind == EventKind.SERVER_DOWN

    @property
    def is_slowdown(self) -> bool:
        """True for a slowdown of a server or of an edge."""
        return self.start.kind in SLOWDOWNS

    @property
    def targets_server(self) -> bool:
        """True if the target is a server (an outage or a server slowdown), False if it
        is an edge (a spike or an edge slowdown)."""
        return self.start.kind in SERVER_EVENTS

    @property
    def scope(self) -> SlowdownScope | None:
        """The step times a server slowdown multiplies (`both` when not given); None for
        other events."""
        if self.start.kind != EventKind.SERVER_SLOWDOWN_START:
            return None
        return self.start.applies_to or SlowdownScope.BOTH
