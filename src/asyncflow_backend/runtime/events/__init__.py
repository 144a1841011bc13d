"""What changes during a run: injected events (network spikes, server outages,
slowdowns), capacity schedules and random failures."""

from asyncflow_backend.runtime.events.capacity import CapacitySchedule
from asyncflow_backend.runtime.events.failures import FailureProcess
from asyncflow_backend.runtime.events.injection import EventInjector
from asyncflow_backend.runtime.events.slowdown import Slowdown, Slowdowns

__all__ = ["CapacitySchedule", "EventInjector", "FailureProcess", "Slowdown", "Slowdowns"]
