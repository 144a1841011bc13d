"""500 runs from 50 concurrent clients, all waited for, then checked in the database.

The clients start one after another over `--ramp-up` seconds. Each takes
the next of `--runs` submissions, submits a small scenario
(about 100 simulated requests; `api_load.small_scenario`), polls its status
every `--poll-interval` seconds until it is final, and takes the next, until
all are submitted. Then the database is read: every accepted id must be one
`succeeded` run with one results row and its six series, and nothing else
may be there. It prints

- accepted: submissions answered 202;
- succeeded: accepted runs whose stored status is `succeeded`;
- lost: accepted runs that are missing or not succeeded (must be 0);
- duplicated: results or series rows beyond one set per run, plus stored runs
  that no 202 announced (must be 0); `attempts > 1` is shown apart (a retried
  run is not a duplicate as long as it stored once);
- runs per second, from the first submission to the last run finished;
- p50 / p99 of the submit and status round trips, as the clients measured them.

Without `--url` it starts the deployed shape with `api_load.service`: a fresh
Postgres database, a Redis queue of its own, `asyncflow serve` with
`--api-processes` processes and `--workers` single-process `asyncflow
worker`s, with `--worker-nice` as `ASYNCFLOW_WORKER_NICE`. With `--url` it
loads a running service whose database is `--database-url`.

    python benchmarks/load_500.py [--runs 500] [--clients 50] [--workers 2] [--worker-nice 10]
    python benchmarks/load_500.py --url http://127.0.0.1:8000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/asyncflow

Exits 1 when a run is lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import (
    TRANSPORT_ERRORS,
    Tally,
    _percentile_ms,
    fetch,
    follow,
    keep_collector_off_startup_objects,
    open_client,
    service,
    small_scenario,
    staggered,
)

SERIES_PER_RUN = 6
"""Sampled series of `small_scenario`: three server metrics and three edges."""


@dataclass
class Submissions(Tally):
    """What the clients did and saw, and which submission comes next."""

    total: int = 0
    next_index: int = 0
    accepted: list[str] = field(default_factory=list)
    last_final_at: float = 0.0

    def take(self) -> int | None:
        """The index of the next submission, or None when all are taken."""
        if self.next_index >= self.total:
            return None
        self.next_index += 1
        return self.next_index


async def client_loop(
    client: aiohttp.ClientSession, runs: Submissions, poll_s: float, timeout_s: float
) -> None:
    """Submit the next run, follow it until it is final, repeat until none is left."""
    while (index := runs.take()) is not None:
        scenario = small_scenario(index)
        started = time.perf_counter()
        try:
            answer = await fetch(client, "POST", "/api/v1/simulations", json=scenario)
        except TRANSPORT_ERRORS:
            runs.transport_errors += 1
            continue
        runs.submit_s.append(time.perf_counter() - started)
        runs.submit_codes[answer.status] += 1
        if answer.status != 202:
            continue
        runs.accepted.append(answer.json()["id"])
        deadline = time.monotonic() + timeout_s
        if await follow(client, answer.headers["location"], deadline, poll_s, runs):
            runs.last_final_at = time.monotonic()


async def submit_all(
    url: str, total: int, clients: int, poll_s: float, timeout_s: float, ramp_up_s: float
) -> tuple[Submissions, float]:
    """All submissions, followed to the end; returns them and the seconds they took.

    Client n starts n x `ramp_up_s` / `clients` seconds after the first.
    """
    runs = Submissions(total=total)
    keep_collector_off_startup_objects()
    async with open_client(url, clients) as client:
        started = time.monotonic()
        await asyncio.gather(
            *(
                staggered(n * ramp_up_s / clients, client_loop(client, runs, poll_s, timeout_s))
                for n in range(clients)
            )
        )
    return runs, max(runs.last_final_at, time.monotonic()) - started


async def stored(dsn: str, accepted: list[str]) -> dict[str, Any]:
    """Lost and duplicated runs, as the database has them."""
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await connection.fetch(
            """
            SELECT r.id, r.status, r.attempts,
                   (SELECT count(*) FROM run_results x WHERE x.run_id = r.id) AS results,
                   (SELECT count(*) FROM run_series s WHERE s.run_id = r.id) AS series
            FROM runs r
            """
        )
    finally:
        await connection.close()
    by_id = {row["id"]: row for row in rows}
    wanted = set(accepted)
    lost = [i for i in accepted if i not in by_id or by_id[i]["status"] != "succeeded"]
    extra_rows = sum(
        max(0, row["results"] - 1) + max(0, row["series"] - SERIES_PER_RUN)
        for row in by_id.values()
    )
    unannounced = [i for i in by_id if i not in wanted]
    return {
        "stored_runs": len(by_id),
        "succeeded": sum(1 for i in accepted if i in by_id and by_id[i]["status"] == "succeeded"),
        "lost": len(lost),
        "lost_ids": lost[:10],
        "duplicated": extra_rows + len(unannounced),
        "stored_by_status": dict(Counter(row["status"] for row in by_id.values())),
        "retried_runs": sum(1 for row in by_id.values() if row["attempts"] > 1),
    }


def report(
    runs: Submissions, elapsed: float, checked: dict[str, Any], shape: str
) -> dict[str, Any]:
    """Print the figures and return them as data."""
    figures = {
        "shape": shape,
        "submissions": runs.total,
        "accepted": len(runs.accepted),
        **checked,
        "seconds": round(elapsed, 1),
        "runs_per_s": round(checked["succeeded"] / elapsed, 2),
        "submit_p50_ms": _percentile_ms(runs.submit_s, 50),
        "submit_p99_ms": _percentile_ms(runs.submit_s, 99),
        "status_requests": len(runs.status_s),
        "status_p50_ms": _percentile_ms(runs.status_s, 50),
        "status_p99_ms": _percentile_ms(runs.status_s, 99),
        "submit_codes": dict(runs.submit_codes),
        "status_codes": dict(runs.status_codes),
        "transport_errors": runs.transport_errors,
    }
    print(f"\n{runs.total} runs, {shape}")
    for name in ("accepted", "succeeded", "lost", "duplicated", "retried_runs"):
        print(f"  {name:13s} {figures[name]}")
    print(f"  runs/s        {figures['runs_per_s']}  ({figures['seconds']} s)")
    for name in ("submit", "status"):
        print(
            f"  {name:6s} p50 {figures[f'{name}_p50_ms']} ms  p99 {figures[f'{name}_p99_ms']} ms"
            f"  codes {figures[f'{name}_codes']}"
        )
    print(f"  transport errors {runs.transport_errors}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="Submissions in all.")
    parser.add_argument("--clients", type=int, default=50, help="Concurrent clients.")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes to start.")
    parser.add_argument(
        "--worker-nice", type=int, default=10, help="ASYNCFLOW_WORKER_NICE of the workers."
    )
    parser.add_argument(
        "--api-processes",
        type=int,
        default=2,
        help="Processes of `asyncflow serve` (2, as docker-compose.yml deploys it).",
    )
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument(
        "--ramp-up", type=float, default=2.0, help="Seconds over which the clients start."
    )
    parser.add_argument("--run-timeout", type=float, default=600, help="Seconds to follow a run.")
    parser.add_argument("--url", help="Load this running service instead of starting one.")
    parser.add_argument("--database-url", help="With --url: its database (libpq URL).")
    parser.add_argument("--postgres-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()

    def run(url: str, dsn: str, shape: str) -> dict[str, Any]:
        runs, elapsed = asyncio.run(
            submit_all(
                url, args.runs, args.clients, args.poll_interval, args.run_timeout, args.ramp_up
            )
        )
        checked = asyncio.run(stored(dsn, runs.accepted))
        return report(runs, elapsed, checked, shape)

    if args.url:
        if not args.database_url:
            parser.error("--url needs --database-url, where the runs are checked")
        figures = run(args.url, args.database_url, "running service")
    else:
        name = f"asyncflow_bench_{uuid.uuid4().hex[:12]}"
        base, _, _ = args.postgres_dsn.rpartition("/")
        nice = {"ASYNCFLOW_WORKER_NICE": str(args.worker_nice)}
        with (
            tempfile.TemporaryDirectory(prefix="asyncflow-load-") as logs,
            service(
                args.postgres_dsn,
                args.redis_url,
                args.workers,
                Path(logs),
                name,
                nice,
                api_processes=args.api_processes,
            ) as url,
        ):
            shape = (
                f"{args.clients} clients, {args.api_processes} API process(es) + "
                f"{args.workers} workers (nice {args.worker_nice})"
            )
            print(f"service at {url}: {shape}, Postgres and Redis; loading...")
            figures = run(url, f"{base}/{name}", shape)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    if figures["lost"] or figures["duplicated"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
