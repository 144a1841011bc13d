"""What changes during a run: injected events (network spikes, server outages) and
capacity schedules."""

from asyncflow_backend.runtime.events.capacity import CapacitySchedule
from asyncflow_backend.runtime.events.injection import EventInjector

__all__ = ["CapacitySchedule", "EventInjector"]
