"""Per-server resources: CPU cores, RAM and connection pools, all one cancellable
`Resource` served first come, first served.

They play the part of SimPy's `Resource` and `Container`, but hand a grant to
a callback instead of triggering an event: a request that finds a core free
starts its CPU burst in the same step, without a scheduled grant event. That
halves the events per request and is the main reason the engine is fast.
"""

from asyncflow_backend.resources.base import Resource, Waiter
from asyncflow_backend.resources.cores import CoreSet
from asyncflow_backend.resources.pool import ConnectionPool
from asyncflow_backend.resources.ram import RamPool

__all__ = ["ConnectionPool", "CoreSet", "RamPool", "Resource", "Waiter"]
