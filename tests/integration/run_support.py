"""For the integration tests: scenarios of a chosen size, polling, worker processes."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asyncflow_backend.config.settings import ENV_PREFIX, Settings
from asyncflow_backend.db.models import Run
from asyncflow_backend.db.repository import RunRepository
from asyncflow_backend.db.session import Database
from support.documents import cpu, exponential, io, poisson_arrivals, ram, server
from support.topologies import direct

ASYNCFLOW = Path(sys.executable).with_name("asyncflow")


def make_scenario(rate: float = 50.0, horizon: float = 60.0, **sim: Any) -> dict[str, Any]:
    """A valid scenario as JSON data: Poisson arrivals of `rate` per second into one server.

    Wall time grows with rate x horizon (the number of requests), which lets
    tests ask for runs that last a fraction of a second or many seconds.
    """
    srv = server(
        "srv", cpu(0.0002), ram(16), io(0.005), endpoint_name="/api", cpu_cores=2, ram_mb=1024
    )
    return direct(
        poisson_arrivals(rate, user_sampling_window=60),
        [srv],
        horizon_s=horizon,
        latency=exponential(0.001),
        dropout=None,
        settings={"sample_period_s": 0.1, **sim},
    )


LONG_RUN = {"rate": 1000.0, "horizon": 900.0}
"""Arguments of `make_scenario` for a run of many seconds (about 900,000 requests)."""


async def wait_for_run(database: Database, run_id: str, until: Callable[[Run], bool]) -> Run:
    """Poll the run until `until(run)` holds.

    No deadline of its own: the test's ceiling (pytest-timeout) fails a wait that
    never ends, and the last state printed here is in its report.
    """
    last = None
    while True:
        async with database.session() as session:
            run = await RunRepository(session).get(run_id)
        if run is not None and until(run):
            return run
        state = None if run is None else (run.status, run.progress, run.attempts, run.error)
        if state != last:
            print("run", run_id, state)
            last = state
        await asyncio.sleep(0.1)


class WorkerProcess:
    """An `asyncflow worker` command running in its own process group."""

    def __init__(self, settings: Settings, log_path: Path, processes: int = 1) -> None:
        env = {**os.environ, **settings_env(settings)}
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [str(ASYNCFLOW), "worker", "--processes", str(processes)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole group: the machine dies, nothing is cleaned up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if the workers have not stopped within `grace_s`."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce `settings` in another process.

    API keys are left out: settings keep only their digests, which cannot be
    turned back into keys; pass `ASYNCFLOW_API_KEYS` explicitly where needed.
    """
    env = {}
    for name, value in settings.model_dump(mode="json", exclude_unset=True).items():
        if value is None or name == "api_keys":
            continue
        if isinstance(value, list):
            text = ",".join(value)
        else:
            text = value if isinstance(value, str) else json.dumps(value)
        env[f"{ENV_PREFIX}{name.upper()}"] = text
    return env


def _stat_fields(pid: int) -> list[str]:
    # /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces.
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    return text.rsplit(")", 1)[1].split()


def niceness(pid: int) -> int:
    """The nice value of a process (from /proc, so any process of this machine)."""
    return int(_stat_fields(pid)[16])


def group_pids(group: int) -> list[int]:
    """The live processes of a process group."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[2]) == group:
                    pids.append(int(entry.name))
            except (OSError, IndexError):
                continue  # ended meanwhile
    return pids
