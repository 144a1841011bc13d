"""Running an experiment in this process, or in a pool of processes on this machine."""

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from asyncflow_backend.experiments.measure import Replication, Warmup, run_replication
from asyncflow_backend.experiments.plan import Needed, plan
from asyncflow_backend.experiments.prepare import PreparedExperiment
from asyncflow_backend.experiments.report import ExperimentReport
from asyncflow_backend.experiments.seeds import replication_seed
from asyncflow_backend.schemas.scenario import Scenario

ProgressHook = Callable[[int, int], None]
"""Called with (replications finished, replications planned so far)."""

Job = tuple[Scenario, int, int, Warmup, tuple[str, ...]]


def run_experiment(
    prepared: PreparedExperiment, *, processes: int = 1, on_progress: ProgressHook | None = None
) -> ExperimentReport:
    """Run every replication the experiment needs and return its complete report.

    With `processes` above 1 the replications of each step run in a pool of
    spawned processes. Raises what a replication raises.
    """
    done: dict[str, dict[int, Replication]] = {}
    pool = (
        ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
        if processes > 1
        else None
    )
    try:
        while True:
            step = plan(
                prepared.spec, prepared.base, prepared.seed, done, prepared.metrics, prepared.check
            )
            finished = step.report.replications_done
            planned = step.report.replications_planned
            if on_progress is not None:
                on_progress(finished, planned)
            if not step.needed:
                return step.report
            for need, replication in _execute(pool, prepared, step.needed):
                done.setdefault(need.point.key, {})[need.index] = replication
                finished += 1
                if on_progress is not None:
                    on_progress(finished, planned)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _jobs(prepared: PreparedExperiment, needed: list[Needed]) -> list[tuple[Needed, Job]]:
    warmup = prepared.spec.warmup_s
    return [
        (
            need,
            (
                prepared.scenario_of(need.point),
                need.index,
                replication_seed(prepared.seed, need.index),
                warmup,
                prepared.spec.windowed(),
            ),
        )
        for need in needed
    ]


def _execute(
    pool: ProcessPoolExecutor | None, prepared: PreparedExperiment, needed: list[Needed]
) -> Iterator[tuple[Needed, Replication]]:
    jobs = _jobs(prepared, needed)
    if pool is None:
        for need, job in jobs:
            yield need, run_replication(*job)
        return
    futures = {pool.submit(run_replication, *job): need for need, job in jobs}
    for future in as_completed(futures):
        yield futures[future], future.result()
