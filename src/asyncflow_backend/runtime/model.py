"""Building the actors of a scenario on a SimPy environment and wiring them together."""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import simpy

from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe, TimeSeriesSampler
from asyncflow_backend.runtime.actors import (
    Answering,
    BuildError,
    Calling,
    Component,
    Covering,
    Node,
    Source,
)
from asyncflow_backend.runtime.actors.client import ClientRuntime
from asyncflow_backend.runtime.actors.closed_users import ClosedLoopCollector
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.actors.server import ServerRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.events import EventInjector, Slowdowns
from asyncflow_backend.runtime.events.autoscaler import HorizontalAutoscaler
from asyncflow_backend.runtime.kinds import NODE_KINDS
from asyncflow_backend.runtime.timeouts import TimeoutSetup, timeout_setup
from asyncflow_backend.runtime.workload_classes import ClassCollector
from asyncflow_backend.samplers import RandomStreams
from asyncflow_backend.schemas.calls import answering_servers, call_sites, has_retries
from asyncflow_backend.schemas.replicas import ReplicaGroup
from asyncflow_backend.schemas.retries import Retry
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.workload import WorkloadModel

T = TypeVar("T")


@dataclass
class SimulationModel:
    """Every actor of one run, ready to be driven by `SimulationRunner`."""

    env: simpy.Environment
    collector: MetricsCollector
    nodes: dict[str, Component]
    edges: dict[str, EdgeRuntime]
    sampler: TimeSeriesSampler
    autoscalers: dict[str, HorizontalAutoscaler] = field(default_factory=dict)
    """The autoscaler of each autoscaled replica group, by group name."""

    @classmethod
    def build(
        cls, scenario: Scenario, streams: RandomStreams, groups: Sequence[ReplicaGroup] = ()
    ) -> "SimulationModel":
        """Build the nodes of every kind, then the edges, connect each node to the edges
        leaving it, gather the probes, and start the processes: the workloads' first,
        then the sampler's, the injected events' and the autoscalers', then the other
        nodes', in build order. `groups` are the replica groups `scenario` was written out
        from (`schemas.replicas`): each with an autoscaler gets one.

        Raises `BuildError` if a node lacks a connection it needs (validation refuses
        such scenarios first, so this names a gap in it).
        """
        env = simpy.Environment()
        settings = scenario.sim_settings
        horizon = settings.total_simulation_time
        timeouts = timeout_setup(scenario, streams)
        retry = scenario.rqs_input.retry
        slowdowns = Slowdowns.of(scenario.events or ())
        if scenario.workload_classes:
            ctx = _classes_context(scenario, env, streams, horizon, timeouts, retry, slowdowns)
            collector: MetricsCollector = ctx.collector
        else:
            closed = scenario.rqs_input.model is WorkloadModel.CLOSED
            collector = (ClosedLoopCollector if closed else MetricsCollector)(env, horizon)
            ctx = BuildContext(
                env,
                streams,
                collector,
                horizon,
                timeouts,
                doors=_doors(scenario),
                client_retry=retry,
                retries=has_retries(scenario),
                slowdowns=slowdowns,
            )

        nodes: dict[str, Component] = {}
        for kind in NODE_KINDS:
            for spec in kind.specs(scenario):
                nodes[spec.id] = kind.build(spec, ctx)

        # Calls: each answering server learns its callers, and the edges answers take end
        # at the caller's reply port instead of its front door.
        answers: set[tuple[str, str]] = set()
        for site in call_sites(scenario):
            for server_id in answering_servers(scenario, site.target):
                server = nodes.get(server_id)
                if not isinstance(server, Answering):
                    raise BuildError(f"'{server_id}' answers calls but cannot")
                server.answer_calls_from(site.caller)
                answers.add((server_id, site.caller))

        edges: dict[str, EdgeRuntime] = {}
        out_edges: dict[str, dict[str, EdgeRuntime]] = {node_id: {} for node_id in nodes}
        for spec in scenario.topology_graph.edges:
            target: object = nodes.get(spec.target)
            if (spec.source, spec.target) in answers and isinstance(target, Calling):
                target = target.reply_port
            if not isinstance(target, Node) or spec.source not in nodes:
                raise BuildError(f"edge '{spec.id}' joins unknown or unreachable nodes")
            edge = EdgeRuntime.from_spec(spec, target, ctx)
            edges[spec.id] = edge
            out_edges[spec.source][spec.target] = edge

        for node_id, node in nodes.items():
            node.connect(out_edges[node_id])
        collector.hops.freeze()

        enabled = frozenset(settings.enabled_sample_metrics)
        probes: list[Probe] = []
        for node in nodes.values():
            probes += node.probes(enabled)
        for edge in edges.values():
            probes += edge.probes(enabled)
        sampler = TimeSeriesSampler(env, settings.sample_period_s, probes)

        model = cls(env, collector, nodes, edges, sampler)
        covering = [node for node in nodes.values() if isinstance(node, Covering)]
        for node in nodes.values():
            if isinstance(node, Source):
                node.start(covering)
        if sampler.probes:  # with nothing to read, its ticks would be pure cost
            env.process(sampler.run())
        if scenario.events:
            servers = model.servers
            doors = {sid: door for sid in ctx.doors if (door := servers[sid].door) is not None}
            EventInjector(env, edges, covering, doors, slowdowns).start(scenario.events)
        for group in groups:
            if group.autoscaler is not None:
                servers = model.servers
                scaler = HorizontalAutoscaler(
                    env,
                    group.autoscaler,
                    [servers[member] for member in group.members],
                    group.initial,
                    covering,
                )
                scaler.start()
                model.autoscalers[group.name] = scaler
        for node in nodes.values():
            if not isinstance(node, Source):
                node.start(covering)
        return model

    def of_kind(self, kind: type[T]) -> Iterator[T]:
        """The nodes that are instances of `kind`, in build order."""
        return (node for node in self.nodes.values() if isinstance(node, kind))

    @property
    def servers(self) -> dict[str, ServerRuntime]:
        """The servers by id."""
        return {server.id: server for server in self.of_kind(ServerRuntime)}

    @property
    def client(self) -> ClientRuntime:
        """The client."""
        return next(self.of_kind(ClientRuntime))


def _classes_context(
    scenario: Scenario,
    env: simpy.Environment,
    streams: RandomStreams,
    horizon: float,
    timeouts: TimeoutSetup | None,
    retry: Retry | None,
    slowdowns: Slowdowns,
) -> BuildContext:
    """The build context of a run with workload classes: class indices, a tally per class,
    and each class's endpoint mix by server."""
    generators = scenario.generators
    collector = ClassCollector(env, horizon, len(generators))
    mixes: dict[str, list[Mapping[str, float] | None]] = {}
    for k, workload in enumerate(generators):
        for server_id, weights in (workload.endpoint_mix or {}).items():
            mixes.setdefault(server_id, [None] * len(generators))[k] = weights
    return BuildContext(
        env,
        streams,
        collector,
        horizon,
        timeouts,
        class_of={workload.id: k for k, workload in enumerate(generators)},
        counters={workload.id: collector.tallies[k] for k, workload in enumerate(generators)},
        endpoint_mixes=mixes,
        doors=_doors(scenario),
        client_retry=retry,
        retries=has_retries(scenario),
        slowdowns=slowdowns,
    )


def _doors(scenario: Scenario) -> frozenset[str]:
    """Servers whose outages close their door: those no balancer covers that say what
    becomes of the requests reaching them while down (`when_down`). Without it an
    outage of such a server changes nothing, as in AsyncFlow."""
    covered = {s for _, lb in scenario.topology_graph.nodes.balancers() for s in lb.server_covered}
    when_down = {s.id for s in scenario.topology_graph.nodes.servers if s.when_down is not None}
    return frozenset(
        event.target_id
        for event in scenario.events or ()
        if event.is_outage and event.target_id not in covered and event.target_id in when_down
    )
