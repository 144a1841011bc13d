"""The Redis job queue, on Dramatiq: the broker, the actor, and the API's dispatcher.

Dramatiq's Redis broker keeps a message in a per-worker "unacked" set from
the moment a worker fetches it until the worker acknowledges it after the
actor returns. Workers heartbeat with every broker command; when a worker is
silent for `heartbeat_timeout`, queue maintenance (run with probability
`maintenance_chance` on any command) moves its unacked messages back to the
queue. So a killed worker's run is delivered again; the database claim in
`execute_run` makes sure it still completes only once.
"""

import asyncio
import logging
from typing import Any

import dramatiq
import redis
from dramatiq import Message
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.common import dq_name
from dramatiq.errors import DecodeError
from dramatiq.middleware import Retries, TimeLimit
from dramatiq.middleware.time_limit import TimeLimitExceeded

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs.dispatcher import QueueUnavailableError
from asyncflow_backend.jobs.execution import Execution, Outcome, database_loop, execute_run
from asyncflow_backend.jobs.experiments import advance, unclaimed_runs

log = logging.getLogger(__name__)

ACTOR_NAME = "execute_run"
REDIS_CONNECT_TIMEOUT_S = 5.0
REDIS_SOCKET_TIMEOUT_S = 10.0
# Retries are for a worker that could not reach the database; a run's own
# failures are recorded on the run and end the message.
MAX_RETRIES = 5
MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 60_000


IDLE_POLL_MS = 25
"""Longest a worker's consumer sleeps between two looks at the queue."""


class PromptRedisBroker(RedisBroker):
    """Dramatiq's Redis broker with consumers that look for work at least every IDLE_POLL_MS.

    A consumer that has its one prefetched message in hand backs off
    exponentially up to the worker's idle timeout (a second) while it waits,
    so after each run a worker slept half a second on average before it
    took the next one: most of the time an experiment's short replications
    spent outside the simulation. An idle worker now asks Redis forty times
    a second at most (a fetch is one short Lua script).
    """

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        """A consumer of `queue_name` whose idle back-off stops at IDLE_POLL_MS."""
        return super().consume(queue_name, prefetch, min(timeout, IDLE_POLL_MS))  # type: ignore[no-untyped-call]


def backstop_time_limit_ms(settings: Settings) -> int:
    """Dramatiq's own time limit: above the run's limit, for a run stuck inside one slice."""
    limit_s = settings.run_time_limit_s
    return int((limit_s + max(10.0, 0.1 * limit_s)) * 1000)


def build_broker(settings: Settings) -> tuple[RedisBroker, Any]:
    """The Redis broker of `settings` and the actor that executes runs on it.

    Keys live under the `queue_name` namespace, and the queue has the same
    name, so separate deployments (or test runs) can share one Redis.
    """
    if settings.redis_url is None:
        raise ValueError("the Redis queue needs ASYNCFLOW_REDIS_URL")
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
    )
    broker = PromptRedisBroker(  # type: ignore[no-untyped-call]
        client=client,
        namespace=settings.queue_name,
        heartbeat_timeout=int(settings.worker_heartbeat_timeout_s * 1000),
        maintenance_chance=max(1, round(settings.worker_maintenance_chance * MAINTENANCE_SCALE)),
        middleware=[
            TimeLimit(),  # type: ignore[no-untyped-call]
            Retries(  # type: ignore[no-untyped-call]
                max_retries=MAX_RETRIES, min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS
            ),
        ],
    )

    follower = ExperimentFollower(settings)

    def execute_message(run_id: str) -> None:
        """Execute a run; if another worker holds it under a live lease, look again later.

        Looking again matters when a message is delivered again while the
        lease of a worker that just died has not run out yet.
        """
        execution = execute_run(run_id, settings, interrupts=(TimeLimitExceeded,))
        if execution.retry_after_s is not None:
            actor.send_with_options(args=(run_id,), delay=int(execution.retry_after_s * 1000))
        for next_run in follower.runs_to_queue(execution):
            actor.send(next_run)

    actor = dramatiq.actor(
        execute_message,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name=settings.queue_name,
        time_limit=backstop_time_limit_ms(settings),
    )
    return broker, actor


class ExperimentFollower:
    """Plans experiments after their runs, on the database loop that executed them.

    A worker plans after every replication it finishes; sharing the thread's
    loop and engine with `execute_run` (its connections and compiled
    statements) saves most of the cost of each plan.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def runs_to_queue(self, execution: Execution) -> list[str]:
        """After a run, the runs to queue for its experiment (none if it is not a replication).

        The message is acknowledged only after this returns, so a worker killed
        between planning and sending has the message delivered again: the run
        is then skipped as finished, and the experiment's runs that no worker
        has started are queued again (a duplicate message for a run is harmless).
        """
        if execution.outcome is Outcome.FINISHED and execution.experiment_id is None:
            return []
        if execution.outcome not in (Outcome.FINISHED, Outcome.SKIPPED):
            return []
        db = database_loop(self.settings.database_url)
        return db.run(self._follow(db.database, execution))

    async def _follow(self, database: Database, execution: Execution) -> list[str]:
        limits = self.settings.limits()
        ahead = self.settings.experiment_queue_ahead
        experiment_id = execution.experiment_id
        if execution.outcome is Outcome.FINISHED:
            if experiment_id is None:
                return []
            return await advance(database, experiment_id, limits, queue_ahead=ahead)
        async with database.session() as session:
            experiment_id = await RunLeases(session).experiment_of(execution.run_id)
        if experiment_id is None:
            return []
        planned = await advance(database, experiment_id, limits, queue_ahead=ahead)
        return planned + await unclaimed_runs(database, experiment_id)


class RedisDispatcher:
    """Queues runs on Redis for `asyncflow worker` processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker, self.actor = build_broker(settings)

    async def start(self) -> None:
        """Nothing to start: the connection opens on first use. Warns if Redis is down."""
        if not await self.ping():
            log.warning("Redis at %s does not answer yet", self.broker.client)

    async def stop(self) -> None:
        """Close the Redis connections."""
        await asyncio.to_thread(self.broker.close)

    async def submit(self, run_id: str) -> None:
        """Put a message for the run on the queue."""
        try:
            # The Redis client blocks; keep it off the API's event loop.
            await asyncio.to_thread(self.actor.send, run_id)
        except redis.RedisError as exc:
            raise QueueUnavailableError(f"the job queue is unavailable: {exc}") from exc

    async def runs_in_queue(self) -> set[str]:
        """Ids of runs with a message in Redis: queued, delayed, or fetched and not yet acked."""
        try:
            return await asyncio.to_thread(self._runs_in_queue)
        except redis.RedisError as exc:
            raise QueueUnavailableError(f"the job queue is unavailable: {exc}") from exc

    def _runs_in_queue(self) -> set[str]:
        # Dramatiq keeps every message's data in a hash per queue until it is acked
        # (dramatiq/brokers/redis/dispatch.lua). A delayed message moves from the
        # delay queue to the main queue, added there before it is removed here:
        # reading the delay queue first never misses one in transit.
        namespace, queue = self.settings.queue_name, self.settings.queue_name
        run_ids: set[str] = set()
        for name in (dq_name(queue), queue):  # type: ignore[no-untyped-call]
            for _, data in self.broker.client.hscan_iter(f"{namespace}:{name}.msgs", count=1000):
                try:
                    message = Message.decode(data)
                except DecodeError:
                    continue
                if message.args:
                    run_ids.add(str(message.args[0]))
        return run_ids

    async def ping(self) -> bool:
        """True if Redis answers."""
        try:
            return bool(await asyncio.to_thread(self.broker.client.ping))
        except redis.RedisError:
            return False
