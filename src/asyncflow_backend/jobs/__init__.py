"""Running runs outside the API: a local process pool or a Redis queue with worker processes."""

from asyncflow_backend.jobs.dispatcher import JobDispatcher, QueueUnavailableError, make_dispatcher
from asyncflow_backend.jobs.execution import Execution, execute_run

__all__ = [
    "Execution",
    "JobDispatcher",
    "QueueUnavailableError",
    "execute_run",
    "make_dispatcher",
]
