"""`asyncflow worker`'s main process: keeps N Dramatiq worker processes alive.

Dramatiq's own command stops every worker when one of them dies, and a dead
worker's message comes back only once its heartbeat is old enough and some
worker happened to run queue maintenance (about 100 s with the defaults).
This supervisor instead replaces a worker process that died, and since it
knows that process is dead (it reaped it), it gives its run back at once:

1. its unacked messages go back on their queues, as Dramatiq's maintenance
   would do later (the same Redis keys, see `dramatiq/brokers/redis/dispatch.lua`);
2. the leases its executions held end now, so the redelivered message is
   claimed at once rather than when the lease runs out.

Exactly-once completion does not depend on either: they only make recovery
prompt. Worker processes die with the supervisor (`jobs.orphans`).
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import redis

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs.execution import worker_id_prefix
from asyncflow_backend.jobs.orphans import die_with_parent

log = logging.getLogger(__name__)

LOG_FORMAT = (
    "[%(asctime)s] [PID %(process)d] [%(threadName)s] [%(name)s] [%(levelname)s] %(message)s"
)
EXIT_BOOT_FAILED = 3
"""Exit code of a worker process that could not start (bad settings, import error)."""
POLL_S = 0.5
STOP_TIMEOUT_MS = 600_000
"""How long a stopping worker process waits for its current run (Dramatiq's default)."""
QUICK_DEATH_S = 10.0
MAX_RESTART_DELAY_S = 30.0

# KEYS: none. ARGV: namespace, broker id, queue. Moves the broker's unacked
# message ids of the queue and of its delay queue back onto them, if the
# message still exists, then forgets the broker's acks and heartbeat.
REQUEUE_UNACKED = """
local namespace, broker_id, queue = ARGV[1], ARGV[2], ARGV[3]
local moved = 0
for _, name in ipairs({queue, queue .. ".DQ"}) do
    local acks = namespace .. ":__acks__." .. broker_id .. "." .. name
    for _, message_id in ipairs(redis.call("smembers", acks)) do
        if redis.call("hexists", namespace .. ":" .. name .. ".msgs", message_id) == 1 then
            redis.call("rpush", namespace .. ":" .. name, message_id)
            moved = moved + 1
        end
    end
    redis.call("del", acks)
end
redis.call("zrem", namespace .. ":__heartbeats__", broker_id)
return moved
"""


@dataclass
class _Slot:
    """One worker process of the pool, and when to start its replacement."""

    process: Any = None
    broker_id: str = ""
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float = field(default=0.0)


class WorkerSupervisor:
    """Starts `count` worker processes on `queue`, replaces those that die, stops on SIGTERM."""

    def __init__(self, settings: Settings, queue: str, count: int) -> None:
        self.settings = settings
        self.queue = queue
        self.count = count
        # Forked, as Dramatiq's own command does: a fork starts at once with every module
        # already imported, where a spawned interpreter would import them all again, which
        # takes long at the low CPU priority workers run at. The supervisor holds no
        # threads or connections when it forks.
        methods = multiprocessing.get_all_start_methods()
        self.context: Any = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._stopping = False

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT; returns the exit code (0 after a clean stop)."""
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        slots = [_Slot() for _ in range(self.count)]
        for slot in slots:
            self._start(slot)
        code = 0
        while not self._stopping:
            time.sleep(POLL_S)
            for slot in slots:
                if slot.process is None:
                    if time.monotonic() >= slot.restart_at and not self._stopping:
                        self._start(slot)
                    continue
                exitcode = slot.process.exitcode
                if exitcode is None:
                    continue
                if exitcode == EXIT_BOOT_FAILED:
                    log.critical("a worker process could not start; stopping")
                    self._stopping, code = True, EXIT_BOOT_FAILED
                    break
                self._replace(slot, exitcode)
        self._stop_all(slots)
        return code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _start(self, slot: _Slot) -> None:
        slot.broker_id = uuid.uuid4().hex
        slot.process = self.context.Process(
            target=serve_queue,
            args=(self.queue, slot.broker_id, os.getpid()),
            name=f"asyncflow-worker-{slot.broker_id[:8]}",
        )
        slot.process.start()
        slot.started_at = time.monotonic()

    def _replace(self, slot: _Slot, exitcode: int) -> None:
        pid = slot.process.pid
        log.error("worker process %d exited (code %d); starting another", pid, exitcode)
        slot.process.close()
        slot.process = None
        self._give_back(pid, slot.broker_id)
        lived_s = time.monotonic() - slot.started_at
        slot.quick_deaths = slot.quick_deaths + 1 if lived_s < QUICK_DEATH_S else 0
        # A process that keeps dying at once (out of memory on every run) is restarted
        # less and less often rather than in a tight loop.
        delay_s = min(MAX_RESTART_DELAY_S, 2.0 ** max(0, slot.quick_deaths - 1) - 1)
        slot.restart_at = time.monotonic() + delay_s

    def _give_back(self, pid: int, broker_id: str) -> None:
        """Redeliver the dead process's message now and end its leases (best effort)."""
        try:
            client = redis.Redis.from_url(
                self.settings.redis_url or "", socket_connect_timeout=5, socket_timeout=5
            )
            try:
                moved = client.eval(
                    REQUEUE_UNACKED, 0, self.settings.queue_name, broker_id, self.queue
                )
            finally:
                client.close()
            released = asyncio.run(_release_leases(self.settings.database_url, pid))
            log.info("worker process %d: %s message(s), %d run(s) given back", pid, moved, released)
        except Exception as exc:
            # Dramatiq's maintenance and the lease's expiry will do it later.
            log.warning("could not give back the work of worker process %d now: %s", pid, exc)

    def _stop_all(self, slots: list[_Slot]) -> None:
        running = [slot.process for slot in slots if slot.process is not None]
        for process in running:
            if process.exitcode is None and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        for process in running:
            process.join()


async def _release_leases(database_url: str, pid: int) -> int:
    database = Database(database_url)
    try:
        async with database.session() as session:
            return await RunLeases(session).release_process(worker_id_prefix(pid))
    finally:
        await database.dispose()


def serve_queue(queue: str, broker_id: str, parent_pid: int) -> None:
    """One worker process: a Dramatiq worker with one thread on `queue`, until SIGTERM."""
    die_with_parent(parent_pid)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides, and sends SIGTERM
    try:
        from dramatiq import Worker

        from asyncflow_backend.jobs.broker_entry import broker

        # Known to the supervisor, which requeues this broker's unacked messages if it dies.
        broker.broker_id = broker_id
        broker.emit_after("process_boot")  # type: ignore[no-untyped-call]
        worker = Worker(broker, queues=[queue], worker_threads=1)  # type: ignore[no-untyped-call]
        worker.start()  # type: ignore[no-untyped-call]
    except Exception:
        log.exception("the worker process could not start")
        sys.exit(EXIT_BOOT_FAILED)
    log.info("worker process ready on queue %s", queue)
    while not stopping:
        time.sleep(1)
    worker.stop(timeout=STOP_TIMEOUT_MS)  # type: ignore[no-untyped-call]
    broker.close()  # type: ignore[no-untyped-call]
