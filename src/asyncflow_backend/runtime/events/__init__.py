"""Injected what-if events: network spikes and server outages."""

from asyncflow_backend.runtime.events.injection import EventInjector

__all__ = ["EventInjector"]
