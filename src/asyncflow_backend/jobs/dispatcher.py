"""How the API hands runs to workers, whichever executes them."""

from typing import Protocol


class QueueUnavailableError(RuntimeError):
    """A run could not be handed to the workers (queue unreachable or pool stopped)."""


class JobDispatcher(Protocol):
    """Hands stored runs to workers. The API starts it at start-up and stops it at shutdown."""

    async def start(self) -> None:
        """Get ready to accept runs (and pick up what a previous process left, if it can)."""

    async def stop(self) -> None:
        """Release the queue connection or the worker processes."""

    async def submit(self, run_id: str) -> None:
        """Queue a stored run; raises `QueueUnavailableError` if it cannot."""

    async def ping(self) -> bool:
        """True if runs can be queued now."""

    async def runs_in_queue(self) -> set[str] | None:
        """Ids of runs the queue holds a message for: waiting, delayed or being executed.

        None if it cannot tell right now (then nothing is queued again).
        Raises `QueueUnavailableError` if the queue does not answer.
        """
