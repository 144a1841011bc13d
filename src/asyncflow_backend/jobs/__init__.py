"""Running runs outside the API: a local process pool or a Redis queue with worker processes."""

from asyncflow_backend.jobs.dispatcher import JobDispatcher, QueueUnavailableError
from asyncflow_backend.jobs.execution import Execution, execute_run
from asyncflow_backend.jobs.factory import make_dispatcher

__all__ = [
    "Execution",
    "JobDispatcher",
    "QueueUnavailableError",
    "execute_run",
    "make_dispatcher",
]
