"""A run that needs more memory than `ASYNCFLOW_MAX_RUN_MEMORY_MB` fails at once with that
reason, and the worker that ran it takes the next run, in the local pool and on Redis."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_server import ApiServer, submit_run, wait_for_status
from run_support import WorkerProcess, make_scenario

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.migrate import upgrade

pytestmark = pytest.mark.integration

BUDGET_MB = 24


def piling_up() -> dict[str, Any]:
    """20,000 requests/s into 200/s of capacity: the queue, hence memory, grows by
    about 20,000 requests (some 6 MB) a simulated second, 1.2 M requests in all."""
    scenario = make_scenario(rate=20_000, horizon=60)
    endpoint = scenario["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]
    endpoint["steps"][0]["step_operation"]["cpu_time"] = 0.01
    return scenario


@pytest.mark.parametrize("execution", ["local pool", "redis worker"])
def test_a_run_over_its_memory_budget_fails_and_its_worker_takes_the_next(
    execution: str,
    postgres_database: Callable[[], str],
    redis_url: str,
    queue_name: str,
    start_worker: Callable[..., WorkerProcess],
    servers: list[ApiServer],
    tmp_path: Path,
) -> None:
    url = postgres_database()
    upgrade(url)
    queue = {"redis_url": redis_url, "queue_name": queue_name}
    settings = Settings(
        database_url=url,
        max_run_memory_mb=BUDGET_MB,
        **(queue if execution == "redis worker" else {"redis_url": None}),
    )
    worker = start_worker(settings) if execution == "redis worker" else None
    server = ApiServer(settings, tmp_path / "api.log")
    servers.append(server)
    with server.client() as client:
        greedy = submit_run(client, piling_up())
        small = submit_run(client, make_scenario(rate=50, horizon=10))
        failed = wait_for_status(client, greedy, {"failed"})
        done = wait_for_status(client, small, {"succeeded"})

    assert failed["error"] == (
        f"used more than its memory budget of {BUDGET_MB} MB (ASYNCFLOW_MAX_RUN_MEMORY_MB)"
    )
    assert failed["progress"] < 0.5, "stopped early, not at the end of the run"
    assert done["progress"] == 1.0
    if worker is not None:
        assert worker.process.poll() is None, "the worker process lives on"
    log = (tmp_path / "api.log").read_text(errors="replace")
    assert "worker process died" not in log
