"""Driving a run: simulated time in slices, progress reports, cancellation, results."""

import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from asyncflow_backend import engine_version
from asyncflow_backend.metrics import analyzer
from asyncflow_backend.metrics.recovery import recovery
from asyncflow_backend.runtime.model import SimulationModel
from asyncflow_backend.runtime.summary import Reading, ResultsBlock
from asyncflow_backend.runtime.workload_classes import ClassCollector
from asyncflow_backend.samplers import RandomStreams
from asyncflow_backend.samplers.streams import draw_seed
from asyncflow_backend.schemas.loading import ScenarioValidationError
from asyncflow_backend.schemas.replicas import expand_replicas, replica_groups
from asyncflow_backend.schemas.results import (
    ClassStats,
    NonFiniteResultError,
    ReplicaGroupStats,
    RunMeta,
    SimulationResults,
)
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.triggers import scenario_triggers
from asyncflow_backend.schemas.validation import find_problems

DEFAULT_SLICES = 200


@dataclass(frozen=True)
class RunProgress:
    """How far a run has got."""

    simulated_s: float
    horizon_s: float

    @property
    def fraction(self) -> float:
        """Simulated seconds done over the horizon, from 0 to 1."""
        return min(1.0, self.simulated_s / self.horizon_s)


ProgressCallback = Callable[[RunProgress], bool | None]
"""Called after each slice; returning True asks the run to stop."""


class SimulationCancelled(Exception):
    """The progress callback asked the run to stop; `progress` says where it stopped."""

    def __init__(self, progress: RunProgress) -> None:
        self.progress = progress
        super().__init__(f"cancelled at {progress.simulated_s:g} s of {progress.horizon_s:g} s")


class SimulationRunner:
    """Runs one scenario to its horizon.

    The seed is, in order: the `seed` argument, the scenario's `seed`, or a
    fresh one drawn from the OS. It is reported in `meta.seed`, so any run can
    be replayed. Replica groups are written out as their servers before the
    build (`schemas.replicas`), so `built` is the scenario the engine runs.
    """

    def __init__(self, scenario: Scenario, *, seed: int | None = None) -> None:
        problems = find_problems(scenario)
        if problems:
            raise ScenarioValidationError(problems)
        self.scenario = scenario
        self.groups = replica_groups(scenario)
        self.built = expand_replicas(scenario)
        chosen = seed if seed is not None else scenario.seed
        self.seed = chosen if chosen is not None else draw_seed()
        self.model = SimulationModel.build(self.built, RandomStreams(self.seed), self.groups)
        self._slices_run = 0

    def run(
        self, on_progress: ProgressCallback | None = None, slices: int = DEFAULT_SLICES
    ) -> SimulationResults:
        """Simulate to the horizon in `slices` equal steps, calling `on_progress` after each.

        Raises `SimulationCancelled` if the callback returns True, and
        `NonFiniteResultError` if a measured number is NaN or infinite. Slicing does not
        change the results: the same seed gives the same numbers with any `slices`.
        """
        if self.model.env.now > 0:
            raise RuntimeError("a SimulationRunner runs once; build another to run again")
        horizon = self.scenario.sim_settings.total_simulation_time
        env = self.model.env
        started = time.perf_counter()
        reporting = 0.0  # the callback's own time (a worker's database writes) is not simulating
        for k in range(1, slices + 1):
            until = horizon * k / slices
            env.run(until=until)
            self._slices_run = k
            if on_progress is not None:
                called = time.perf_counter()
                cancel = on_progress(RunProgress(until, horizon))
                reporting += time.perf_counter() - called
                if cancel:
                    raise SimulationCancelled(RunProgress(until, horizon))
        try:
            return self._results(time.perf_counter() - started - reporting)
        except ValidationError as exc:
            raise NonFiniteResultError.from_validation(exc) or exc from None

    def _results(self, wall_seconds: float) -> SimulationResults:
        model = self.model
        horizon = self.scenario.sim_settings.total_simulation_time
        probes = {(p.metric, p.component_id): p for p in model.sampler.probes}
        dropped_at = model.collector.dropped_at
        latency = analyzer.latency_stats(model.collector.latencies)
        reading = Reading(horizon, probes, self._latencies_of())
        block = ResultsBlock()
        for node in model.nodes.values():
            block.add(node.summarise(reading))
        classes = self._classes(block)
        return SimulationResults(
            requests=analyzer.request_counts(model.collector, model.client.id, horizon),
            latency=latency.model_copy(
                update={
                    "over_time": analyzer.latency_over_time(
                        model.collector.latencies,
                        model.collector.completions_per_second,
                        horizon,
                    )
                }
            ),
            throughput=analyzer.throughput(model.collector, horizon),
            time_to_outcome=analyzer.time_to_outcome(model.collector, latency),
            servers=block.servers,
            replica_groups=self._replica_groups(block, probes),
            edges={
                eid: analyzer.edge_stats(eid, dropped_at.get(eid, 0), probes) for eid in model.edges
            },
            pools=block.pools,
            calls=block.calls,
            breakdown=analyzer.breakdown(
                model.collector.hops, block.visits, latency.mean, _route_order(self.built)
            ),
            time_series=analyzer.time_series(
                self.scenario.sim_settings.sample_period_s, model.sampler.probes
            ),
            closed=None if classes is not None else block.closed.get(self.scenario.rqs_input.id),
            classes=classes,
            offered_load=analyzer.offered_load(self.scenario.generators, horizon),
            recovery=recovery(
                scenario_triggers(self.scenario),
                model.collector.completions_per_second,
                model.sampler.probes,
                self.scenario.sim_settings.sample_period_s,
                horizon,
                self.scenario.sim_settings.recovery,
            ),
            meta=RunMeta(
                engine_version=engine_version(),
                seed=self.seed,
                simulated_seconds=horizon,
                wall_seconds=wall_seconds,
                events_processed=_events_processed(model, self._slices_run),
            ),
        )

    def _replica_groups(
        self, block: ResultsBlock, probes: analyzer.Probes
    ) -> dict[str, ReplicaGroupStats]:
        if not self.groups:
            return {}
        servers = self.model.servers
        horizon = self.scenario.sim_settings.total_simulation_time
        groups = {
            group.name: analyzer.replica_group_stats(
                group.members,
                block.servers,
                [plan.times for member in group.members for plan in servers[member].endpoints],
                horizon,
                probes,
            )
            for group in self.groups
        }
        for name, scaler in self.model.autoscalers.items():
            groups[name] = analyzer.autoscaled_group_stats(
                groups[name], block.servers, scaler.summary(horizon), horizon
            )
        return groups

    def _latencies_of(self) -> Callable[[str], "array[float]"]:
        """The latencies of the completed requests of a generator, by id: its class's in a
        run with workload classes, every completed request's otherwise."""
        collector = self.model.collector
        if not isinstance(collector, ClassCollector):
            return lambda _: collector.latencies
        tallies = dict(
            zip((g.id for g in self.scenario.generators), collector.tallies, strict=True)
        )
        return lambda generator_id: tallies[generator_id].latencies

    def _classes(self, block: ResultsBlock) -> dict[str, ClassStats] | None:
        collector = self.model.collector
        if not self.scenario.workload_classes or not isinstance(collector, ClassCollector):
            return None
        horizon = self.scenario.sim_settings.total_simulation_time
        return {
            workload.id: ClassStats(
                generated=tally.generated,
                completed=len(tally.latencies),
                ended={str(outcome): n for outcome, n in sorted(tally.ends.items())},
                throughput_rps=len(tally.latencies) / horizon,
                latency=analyzer.duration_stats([tally.latencies]),
                closed=block.closed.get(workload.id),
            )
            for workload, tally in zip(self.scenario.generators, collector.tallies, strict=True)
        }


def _route_order(scenario: Scenario) -> list[str]:
    """Edge and node ids in the order requests meet them: breadth first from the generator,
    edges in document order, each edge followed by its target."""
    out: dict[str, list[tuple[str, str]]] = {}
    for edge in scenario.topology_graph.edges:
        out.setdefault(edge.source, []).append((edge.id, edge.target))
    order: list[str] = []
    seen: set[str] = set()
    frontier = [scenario.rqs_input.id]
    while frontier:
        node = frontier.pop(0)
        for edge_id, target in out.get(node, ()):
            order.append(edge_id)
            if target not in seen:
                seen.add(target)
                order.append(target)
                frontier.append(target)
    return order


SIMPY_EVENTS_PER_RUN_CALL = 2
"""Bookkeeping events SimPy schedules for each `run(until=...)`: not the model's work."""


def _events_processed(model: SimulationModel, run_calls: int) -> int:
    # SimPy numbers every scheduled event from one counter; reading it costs one
    # number and spares a hook on the hot path. Events still pending at the horizon
    # are counted too, a few at most. The runner's own stop marks are taken out so
    # that the count does not depend on how the run was sliced.
    scheduled = int(next(model.env._eid))
    return scheduled - SIMPY_EVENTS_PER_RUN_CALL * run_calls


def run_scenario(
    scenario: Scenario, *, seed: int | None = None, on_progress: ProgressCallback | None = None
) -> SimulationResults:
    """Build and run `scenario` in one call."""
    return SimulationRunner(scenario, seed=seed).run(on_progress)
