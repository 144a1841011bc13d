"""How an experiment spreads over workers: 40 replications with 1 worker, then with 2.

For each worker count it starts that many `asyncflow worker` processes on a
fresh Postgres database and Redis queue of its own, warms them up with a
small experiment, then submits an experiment of `--replications`
replications (each one a run on the queue, planned by the worker that
finished the one before) and times it from submission until the experiment
is stored as succeeded. It prints, side by side:

- elapsed wall seconds, and the speed-up of 2 workers over 1;
- the mean simulation wall time of one replication (`wall_seconds` of its
  run, the engine's own time, progress reports excluded);
- the overhead per replication: (workers x elapsed - sum of simulation
  times) / replications, less what a replication costs beyond simulating
  in a process of its own without queue or database (building the model,
  analysing the results, measuring the replication: timed here, in this
  process, and printed). What is left is what the service adds: claiming
  the run, progress writes under its lease, storing results and series,
  replaying the plan, the queue's round trips, and a worker waiting at the
  end for the other to finish. It is given as a percentage of the
  simulation time too, and split into the part inside a run (from its
  claim to its stored results) and the part between runs (acknowledging,
  planning the experiment, fetching the next message).

The scenario is calibrated first, in this process, so that one replication
simulates for about `--replication-s` seconds. Workers run at normal
priority (no niceness, no SCHED_IDLE): this measures throughput, not an
API's responsiveness next to them.

    .venv/bin/python benchmarks/experiment_scaling.py [--replications 40] [--replication-s 1]

Needs PostgreSQL and Redis on loopback (or --postgres-dsn / --redis-url).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import redis
from sqlalchemy import select

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.experiments import ExperimentRepository
from asyncflow_backend.db.migrate import upgrade
from asyncflow_backend.db.models import Run, RunResult
from asyncflow_backend.db.repository import FINAL_STATUSES, RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.experiments import ExperimentSpec, prepare, run_replication
from asyncflow_backend.jobs.experiments import start_experiment
from asyncflow_backend.jobs.redis_queue import RedisDispatcher
from asyncflow_backend.schemas.loading import parse_scenario

ASYNCFLOW = Path(sys.executable).with_name("asyncflow")


def scenario(horizon_s: float, rate: float = 500.0) -> dict[str, Any]:
    """Poisson arrivals of `rate` per second into one two-core server with an I/O step."""
    exponential = {"distribution": "exponential"}
    link = {"mean": 0.001, **exponential}
    steps = [
        {
            "kind": "cpu_bound_operation",
            "step_operation": {"cpu_time": {"mean": 0.002, **exponential}},
        },
        {"kind": "io_db", "step_operation": {"io_waiting_time": {"mean": 0.01, **exponential}}},
    ]
    return {
        "rqs_input": {
            "id": "gen",
            "avg_active_users": {"mean": rate, "distribution": "deterministic"},
            "avg_request_per_minute_per_user": {"mean": 60},
        },
        "topology_graph": {
            "nodes": {
                "client": {"id": "client"},
                "servers": [
                    {
                        "id": "srv",
                        "server_resources": {"cpu_cores": 2},
                        "endpoints": [{"endpoint_name": "/api", "steps": steps}],
                    }
                ],
            },
            "edges": [
                {"id": "a", "source": "gen", "target": "client", "latency": link},
                {"id": "b", "source": "client", "target": "srv", "latency": link},
                {"id": "c", "source": "srv", "target": "client", "latency": link},
            ],
        },
        "sim_settings": {"total_simulation_time": horizon_s, "sample_period_s": 0.05},
    }


def calibrate(target_s: float) -> tuple[float, float]:
    """A horizon whose replication simulates for about `target_s` seconds here.

    Also returns what a replication costs beyond simulating, in this process
    with no queue or database: building the model, analysing its results and
    measuring the replication, in seconds.
    """
    horizon = 20.0
    for _ in range(3):
        walls, totals = [], []
        for i in range(3):
            started = time.perf_counter()
            walls.append(run_replication(parse_scenario(scenario(horizon)), i, i, 0.0).wall_seconds)
            totals.append(time.perf_counter() - started)
        horizon = max(5.0, round(horizon * target_s / min(walls), 1))
    return horizon, min(total - wall for total, wall in zip(totals, walls, strict=True))


def _admin(dsn: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@contextlib.contextmanager
def queue_and_database(postgres_dsn: str, redis_url: str) -> Iterator[Settings]:
    """A fresh database and queue for one measurement, removed afterwards."""
    name = f"asyncflow_bench_{uuid.uuid4().hex[:12]}"
    base = postgres_dsn.rpartition("/")[0]
    _admin(postgres_dsn, f'CREATE DATABASE "{name}"')
    url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    try:
        upgrade(url)
        yield Settings(
            database_url=url,
            redis_url=redis_url,
            queue_name=name,
            worker_nice=0,
            worker_sched_idle=False,
        )
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{name}:*"))
        if keys:
            client.delete(*keys)
        client.close()
        _admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def workers(settings: Settings, count: int, log: Path) -> Iterator[None]:
    env = {
        **os.environ,
        "ASYNCFLOW_DATABASE_URL": settings.database_url,
        "ASYNCFLOW_REDIS_URL": settings.redis_url or "",
        "ASYNCFLOW_QUEUE_NAME": settings.queue_name,
        "ASYNCFLOW_WORKER_NICE": "0",
        "ASYNCFLOW_WORKER_SCHED_IDLE": "false",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(ASYNCFLOW), "worker", "--processes", str(count)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


async def run_experiment_on_queue(
    settings: Settings, document: dict[str, Any]
) -> tuple[float, list[float], list[float]]:
    """Submit, wait until it succeeds.

    Returns the elapsed seconds, the simulation wall seconds of each run, and
    each run's time from its claim to its stored results (started_at to
    finished_at).
    """
    database = Database(settings.database_url)
    dispatcher = RedisDispatcher(settings)
    try:
        prepared = prepare(ExperimentSpec.model_validate(document))
        started = time.perf_counter()
        experiment, run_ids = await start_experiment(
            database, prepared.spec.model_dump(mode="json"), seed=prepared.seed, owner=None
        )
        for run_id in run_ids:
            await dispatcher.submit(run_id)
        while True:
            async with database.autocommit() as session:
                found = await ExperimentRepository(session).get(experiment.id)
            assert found is not None
            if RunStatus(found.status) in FINAL_STATUSES:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        if found.status != RunStatus.SUCCEEDED:
            raise SystemExit(f"the experiment ended {found.status}: {found.error}")
        async with database.session() as session:
            rows = (
                await session.execute(
                    select(RunResult.document, Run.started_at, Run.finished_at)
                    .join(Run, Run.id == RunResult.run_id)
                    .where(Run.experiment_id == experiment.id)
                )
            ).all()
        walls = [row.document["meta"]["wall_seconds"] for row in rows]
        held = [(row.finished_at - row.started_at).total_seconds() for row in rows]
        return elapsed, walls, held
    finally:
        await dispatcher.stop()
        await database.dispose()


def measure(
    count: int,
    document: dict[str, Any],
    warm_up: dict[str, Any],
    args: argparse.Namespace,
    results_s: float,
) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="asyncflow-scaling-") as logs,
        queue_and_database(args.postgres_dsn, args.redis_url) as settings,
        workers(settings, count, Path(logs) / "workers.log"),
    ):
        asyncio.run(run_experiment_on_queue(settings, warm_up))
        elapsed, walls, held = asyncio.run(run_experiment_on_queue(settings, document))
    simulated = sum(walls)
    overhead = (count * elapsed - simulated) / len(walls) - results_s
    in_run = (sum(held) - simulated) / len(walls) - results_s
    return {
        "in_run_s": in_run,
        "between_runs_s": overhead - in_run,
        "workers": count,
        "elapsed_s": elapsed,
        "replications": len(walls),
        "simulation_s": simulated / len(walls),
        "overhead_s": overhead,
        "overhead_pct": 100 * overhead / (simulated / len(walls)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replications", type=int, default=40)
    parser.add_argument(
        "--replication-s", type=float, default=1.0, help="Target simulation time of one."
    )
    parser.add_argument("--postgres-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    horizon, results_s = calibrate(args.replication_s)
    document = {"scenario": scenario(horizon), "seed": 1, "replications": args.replications}
    warm_up = {"scenario": scenario(5.0), "seed": 2, "replications": 2}
    print(
        f"{args.replications} replications of {horizon:g} simulated seconds each; "
        f"building, analysing and measuring one takes {1000 * results_s:.1f} ms on top of "
        "simulating it, without queue or database (not counted as overhead)"
    )
    rows = [measure(count, document, warm_up, args, results_s) for count in (1, 2)]
    print(
        f"{'workers':>8} {'elapsed s':>10} {'sim s/rep':>10} {'overhead s/rep':>15} "
        f"{'overhead':>9} {'in run s':>9} {'between s':>10}"
    )
    for row in rows:
        print(
            f"{row['workers']:>8.0f} {row['elapsed_s']:>10.2f} {row['simulation_s']:>10.3f} "
            f"{row['overhead_s']:>15.4f} {row['overhead_pct']:>8.1f}% {row['in_run_s']:>9.4f} "
            f"{row['between_runs_s']:>10.4f}"
        )
    print(f"speed-up with 2 workers: {rows[0]['elapsed_s'] / rows[1]['elapsed_s']:.2f}x")


if __name__ == "__main__":
    main()
